--[[ hashTag: the part of a key Redis Cluster hashes (the first non-empty {...}), or the
  whole key when it has none. Scripts compare it with the caller's tag (ARGV) before touching
  a key computed at run time, so a key in another slot is refused before anything is written.
]]
local function hashTag(key)
  local open = string.find(key, "{", 1, true)
  if open then
    local close = string.find(key, "}", open + 1, true)
    if close and close > open + 1 then
      return string.sub(key, open + 1, close - 1)
    end
  end
  return key
end
