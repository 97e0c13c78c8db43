--[[ eventsCap(metaKey)
  The events stream's approximate maximum length: meta "opts.maxLenEvents", which is
  written as 10000 when a queue has none yet.
  capOrDefault(metaKey, stored): the same from that field's value read by the caller. ]]
local function capOrDefault(metaKey, stored)
  if stored then
    return stored
  end
  redis.call("HSET", metaKey, "opts.maxLenEvents", 10000)
  return 10000
end

local function eventsCap(metaKey)
  return capOrDefault(metaKey, redis.call("HGET", metaKey, "opts.maxLenEvents"))
end
