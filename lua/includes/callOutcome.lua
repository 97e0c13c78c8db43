--[[ Exactly-once transitions across client retries.
  A caller that lost a reply calls again with the same token (same outcome key): the first
  successful run stores its result there for ttl ms, and a repeat returns it untouched.
  recallOutcome(opKey) -> the stored string or false.
  rememberOutcome(opKey, value, ttl) stores a string. ]]
local function recallOutcome(opKey)
  return redis.call("GET", opKey)
end

local function rememberOutcome(opKey, value, ttl)
  redis.call("SET", opKey, value, "PX", ttl)
end
