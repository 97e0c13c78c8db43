--[[ Putting a job id where workers find it.
  wakeWorkers(markerKey, blocked): the base marker (member "0", score 0) unless blocked.
  enqueueWaiting(waitKey, markerKey, id, lifo, blocked): LPUSH (the head, processed after
    everything already waiting) or, for lifo, RPUSH (the tail, processed next).
  enqueuePrioritized(prioritizedKey, counterKey, markerKey, id, priority, blocked): score
    priority * 2^32 + (INCR counter) mod 2^32, so equal priorities keep arrival order. ]]
local function wakeWorkers(markerKey, blocked)
  if not blocked then
    redis.call("ZADD", markerKey, 0, "0")
  end
end

local function enqueueWaiting(waitKey, markerKey, id, lifo, blocked)
  if lifo then
    redis.call("RPUSH", waitKey, id)
  else
    redis.call("LPUSH", waitKey, id)
  end
  wakeWorkers(markerKey, blocked)
end

local function enqueuePrioritized(prioritizedKey, counterKey, markerKey, id, priority, blocked)
  local sequence = redis.call("INCR", counterKey) % 4294967296
  redis.call("ZADD", prioritizedKey, priority * 4294967296 + sequence, id)
  wakeWorkers(markerKey, blocked)
end
