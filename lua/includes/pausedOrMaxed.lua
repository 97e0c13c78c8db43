--[[ queueBlocked(metaKey, activeKey)
  True when workers must not be woken: the queue is paused (meta field "paused" exists,
  whatever its value) or its global concurrency is used up (LLEN active >= meta concurrency). ]]
local function queueBlocked(metaKey, activeKey)
  local meta = redis.call("HMGET", metaKey, "paused", "concurrency")
  if meta[1] then
    return true
  end
  local limit = tonumber(meta[2])
  return limit ~= nil and redis.call("LLEN", activeKey) >= limit
end
