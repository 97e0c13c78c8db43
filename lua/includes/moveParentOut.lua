--[[ moveParentOut(parentQueueKey, parentKey, parentId, now)
  Puts a parent of a flow, already taken out of the set that held it (waiting-children, or
  delayed for a failed child), where it can run: delay > 0 -> its queue's delayed set at
  (now + delay) * 4096 (event "delayed", delay marker); priority 0 -> RPUSH (the front of the
  line); priority > 0 -> prioritized; base marker unless that queue is blocked; "waiting"
  prev "waiting-children" on the parent's own stream. ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "delayedScore"
local function moveParentOut(parentQueueKey, parentKey, parentId, now)
  local pq = parentQueueKey .. ":"
  local fields = redis.call("HMGET", parentKey, "priority", "delay")
  local priority = tonumber(fields[1]) or 0
  local delay = tonumber(fields[2]) or 0
  if delay > 0 then
    local due = tonumber(now) + delay
    redis.call("ZADD", pq .. "delayed", due * 4096, parentId)
    redis.call("XADD", pq .. "events", "*", "event", "delayed", "jobId", parentId, "delay", due)
    markDelayed(pq .. "marker", pq .. "delayed")
    return
  end
  local blocked = queueBlocked(pq .. "meta", pq .. "active")
  if priority > 0 then
    enqueuePrioritized(pq .. "prioritized", pq .. "pc", pq .. "marker", parentId, priority, blocked)
  else
    enqueueWaiting(pq .. "wait", pq .. "marker", parentId, true, blocked)
  end
  redis.call("XADD", pq .. "events", "*", "event", "waiting", "jobId", parentId,
    "prev", "waiting-children")
end
