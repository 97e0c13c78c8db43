--[[ eventsCap(metaKey)
  The events stream's approximate maximum length: meta "opts.maxLenEvents", which is
  written as 10000 when a queue has none yet. ]]
local function eventsCap(metaKey)
  local cap = redis.call("HGET", metaKey, "opts.maxLenEvents")
  if cap then
    return cap
  end
  redis.call("HSET", metaKey, "opts.maxLenEvents", 10000)
  return 10000
end
