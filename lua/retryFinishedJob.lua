--[[ retryFinishedJob: Job.retry() - move a completed or failed job back to waiting.

  KEYS[1]  job hash             <prefix>:<queue>:<id>
  KEYS[2]  events stream
  KEYS[3]  the finished set it must be in (<prefix>:<queue>:failed or :completed)
  KEYS[4]  wait list
  KEYS[5]  meta hash
  KEYS[6]  active list
  KEYS[7]  marker zset
  KEYS[8]  prioritized zset
  KEYS[9]  priority counter (pc)
  KEYS[10] outcome key of this call (see includes/callOutcome)

  ARGV[1] job id
  ARGV[2] "1" when the job is lifo (RPUSH to the tail = next), else "0" (LPUSH)
  ARGV[3] "failed" or "completed"
  ARGV[4] "1" to delete attemptsMade (atm)
  ARGV[5] "1" to delete attemptsStarted (ats)
  ARGV[6] outcome ttl in ms

  Returns
    {1, "waiting" | "prioritized"}        moved; the second item is where it went
    {1, "waiting" | "prioritized", 1}     a repeated call: the first one had moved it
    -1  the job hash does not exist
    {-3, state}  the job is not in KEYS[3]; state is where it is (includes/jobState)
  Effects on success, as BullMQ 6.7 reprocessJob: finishedOn, processedOn and failedReason
  (failed) or returnvalue (completed) deleted; priority 0 -> wait list, priority > 0 ->
  prioritized with a fresh counter score (lifo ignored there); base marker unless the queue
  is paused or at its global concurrency; the parent dependency restored; XADD "waiting"
  with prev = the old state, capped at the queue's maxLenEvents.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "restoreParentDependency"
-- @include "eventsCap"
-- @include "jobState"

local jobKey, opKey = KEYS[1], KEYS[10]
local jobId, fromState = ARGV[1], ARGV[3]

local earlier = recallOutcome(opKey)
if earlier then
  return {1, earlier, 1}
end

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
if redis.call("ZREM", KEYS[3], jobId) == 0 then
  return notInState(jobKey, jobId)
end

local cleared = {"finishedOn", "processedOn"}
cleared[3] = fromState == "completed" and "returnvalue" or "failedReason"
if ARGV[4] == "1" then
  cleared[#cleared + 1] = "atm"
end
if ARGV[5] == "1" then
  cleared[#cleared + 1] = "ats"
end
redis.call("HDEL", jobKey, unpack(cleared))

local blocked = queueBlocked(KEYS[5], KEYS[6])
local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
local landed = "waiting"
if priority > 0 then
  enqueuePrioritized(KEYS[8], KEYS[9], KEYS[7], jobId, priority, blocked)
  landed = "prioritized"
else
  enqueueWaiting(KEYS[4], KEYS[7], jobId, ARGV[2] == "1", blocked)
end

restoreParentDependency(jobKey, fromState)

redis.call("XADD", KEYS[2], "MAXLEN", "~", eventsCap(KEYS[5]), "*",
  "event", "waiting", "jobId", jobId, "prev", fromState)

rememberOutcome(opKey, landed, ARGV[6])
return {1, landed}
