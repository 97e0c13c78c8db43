--[[ Putting a job id where workers find it.
  wakeWorkers(markerKey, blocked): the base marker (member "0", score 0) unless blocked.
  enqueueWaiting(waitKey, markerKey, id, lifo, blocked): LPUSH (the head, processed after
    everything already waiting) or, for lifo, RPUSH (the tail, processed next).
  enqueuePrioritized(prioritizedKey, counterKey, markerKey, id, priority, blocked): score
    prioritizedScore(counterKey, priority), then the marker.
  prioritizedScore(counterKey, priority): BullMQ's score in the prioritized set,
    priority * 2^32 + (INCR counter) mod 2^32, so equal priorities keep arrival order. The one
    place this formula is written (adding, flows, retries, promotions of due delayed jobs). ]]
local function prioritizedScore(counterKey, priority)
  return priority * 4294967296 + redis.call("INCR", counterKey) % 4294967296
end

local function wakeWorkers(markerKey, blocked)
  if not blocked then
    redis.call("ZADD", markerKey, "0", "0")
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
  redis.call("ZADD", prioritizedKey, prioritizedScore(counterKey, priority), id)
  wakeWorkers(markerKey, blocked)
end
