--[[ rescheduleJob: Job.promote / Job.changeDelay / Job.changePriority.

  KEYS[1] job hash      KEYS[2] delayed zset   KEYS[3] wait list
  KEYS[4] prioritized   KEYS[5] pc             KEYS[6] marker
  KEYS[7] meta          KEYS[8] active list    KEYS[9] events stream
  KEYS[10] outcome key of this call (see includes/callOutcome)
  ARGV[1] job id   ARGV[2] "promote" | "delay" | "priority"
  ARGV[3] new delay ms or new priority   ARGV[4] "1" lifo   ARGV[5] now ms
  ARGV[6] outcome ttl in ms

  Returns {0} done, {0, 1} repeated call, -1 job missing, {-3, state} not delayed (promote,
  delay; state is where the job is, see includes/jobState).
  Effects, as BullMQ 6.7 promote / changeDelay / changePriority:
  promote: out of delayed; priority 0 -> LPUSH wait, else prioritized (counter score);
    base marker unless paused/maxed; "waiting" prev "delayed" (uncapped); delay field 0.
  delay: re-scored at now + delay with the 4096 sequence rule; delay field set; "delayed"
    (delay = due ms, capped); delay marker.
  priority: a job in prioritized or wait is re-queued with the new priority (0 -> wait,
    lifo at the tail; > 0 -> counter score, or lifo at the front of its priority); the
    priority field is set either way.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "delayedScore"
-- @include "jobState"

if recallOutcome(KEYS[10]) then
  return {0, 1}
end
local id, what = ARGV[1], ARGV[2]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end

if what == "promote" then
  if redis.call("ZREM", KEYS[2], id) == 0 then
    return notInState(KEYS[1], id)
  end
  local blocked = queueBlocked(KEYS[7], KEYS[8])
  local priority = tonumber(redis.call("HGET", KEYS[1], "priority")) or 0
  if priority > 0 then
    enqueuePrioritized(KEYS[4], KEYS[5], KEYS[6], id, priority, blocked)
  else
    enqueueWaiting(KEYS[3], KEYS[6], id, false, blocked)
  end
  redis.call("XADD", KEYS[9], "*", "event", "waiting", "jobId", id, "prev", "delayed")
  redis.call("HSET", KEYS[1], "delay", 0)
elseif what == "delay" then
  if not redis.call("ZSCORE", KEYS[2], id) then
    return notInState(KEYS[1], id)
  end
  local delay = tonumber(ARGV[3])
  local score, due = delayedScore(KEYS[2], ARGV[5], delay)
  redis.call("ZADD", KEYS[2], score, id)
  redis.call("HSET", KEYS[1], "delay", delay)
  redis.call("XADD", KEYS[9], "MAXLEN", "~", eventsCap(KEYS[7]), "*", "event", "delayed",
    "jobId", id, "delay", due)
  markDelayed(KEYS[6], KEYS[2])
else
  local priority = tonumber(ARGV[3])
  local lifo = ARGV[4] == "1"
  if redis.call("ZREM", KEYS[4], id) > 0 or redis.call("LREM", KEYS[3], -1, id) > 0 then
    local blocked = queueBlocked(KEYS[7], KEYS[8])
    if priority == 0 then
      enqueueWaiting(KEYS[3], KEYS[6], id, lifo, blocked)
    elseif lifo then
      redis.call("ZADD", KEYS[4], priority * 4294967296, id)
    else
      enqueuePrioritized(KEYS[4], KEYS[5], KEYS[6], id, priority, blocked)
    end
  end
  redis.call("HSET", KEYS[1], "priority", priority)
end
rememberOutcome(KEYS[10], "0", ARGV[6])
return {0}
