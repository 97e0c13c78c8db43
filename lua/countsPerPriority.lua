--[[ countsPerPriority: how many jobs wait at each asked priority (read-only, atomic).

  KEYS[1] wait list  KEYS[2] prioritized set
  ARGV[i] a priority (integer >= 0)

  Returns one count per ARGV, in order: priority 0 counts the wait list; any other priority
  counts the prioritized members whose score carries it in its high bits (score = priority
  * 2^32 + an insertion counter).
]]
local band = 4294967296
local counts = {}
for index, raw in ipairs(ARGV) do
  local priority = tonumber(raw)
  if priority == 0 then
    counts[index] = redis.call("LLEN", KEYS[1])
  else
    local low = priority * band
    counts[index] = redis.call("ZCOUNT", KEYS[2], low, low + band - 1)
  end
end
return counts
