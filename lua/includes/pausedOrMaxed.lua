--[[ queueBlocked(metaKey, activeKey)
  True when workers must not be woken: the queue is paused (meta field "paused" exists,
  whatever its value) or its global concurrency is used up (LLEN active >= meta concurrency).
  blockedBy(paused, concurrency, activeKey): the same test on meta fields already read. ]]
local function blockedBy(paused, concurrency, activeKey)
  if paused then
    return true
  end
  local limit = tonumber(concurrency)
  return limit ~= nil and redis.call("LLEN", activeKey) >= limit
end

local function queueBlocked(metaKey, activeKey)
  local meta = redis.call("HMGET", metaKey, "paused", "concurrency")
  return blockedBy(meta[1], meta[2], activeKey)
end
