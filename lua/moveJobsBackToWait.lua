--[[ moveJobsBackToWait: one batch of Queue.retryJobs (failed/completed) or promoteJobs (delayed).

  KEYS[1] the state's zset (<prefix>:<queue>:failed, :completed or :delayed)
  KEYS[2] wait list     KEYS[3] meta hash   KEYS[4] active list
  KEYS[5] marker zset   KEYS[6] events stream
  KEYS[7] outcome key of this call (see includes/callOutcome)

  ARGV[1] base key <prefix>:<queue>:
  ARGV[2] batch size (at most this many jobs move)
  ARGV[3] highest score that qualifies (failed/completed: finishedOn cutoff ms; "+inf")
  ARGV[4] "failed", "completed" or "delayed"
  ARGV[5] outcome ttl in ms

  Returns {moved} or, for a repeated call, {moved, 1} (the count the first call moved).
  Effects, as BullMQ 6.7 moveJobsToWait: the oldest qualifying jobs (lowest scores) leave
  the set and are LPUSHed onto wait in ascending order, so the oldest runs first; priority
  and lifo are ignored; failed jobs lose finishedOn, processedOn, failedReason, completed
  ones finishedOn, processedOn, returnvalue, and a flow child goes back into its parent's
  dependencies; delayed jobs keep their fields. One "waiting" event (prev = the state) per
  job, capped; base marker unless paused/maxed.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "restoreParentDependency"
-- @include "eventsCap"

local CHUNK = 5000
local base, state = ARGV[1], ARGV[4]

local earlier = recallOutcome(KEYS[7])
if earlier then
  return {tonumber(earlier), 1}
end

local ids = redis.call("ZRANGEBYSCORE", KEYS[1], 0, ARGV[3], "LIMIT", 0, tonumber(ARGV[2]))
local moved = #ids
if moved > 0 then
  local cleared = state == "completed" and "returnvalue" or "failedReason"
  if state ~= "delayed" then
    for _, id in ipairs(ids) do
      local jobKey = base .. id
      redis.call("HDEL", jobKey, "finishedOn", "processedOn", cleared)
      restoreParentDependency(jobKey, state)
    end
  end
  local cap = eventsCap(KEYS[3])
  for _, id in ipairs(ids) do
    redis.call("XADD", KEYS[6], "MAXLEN", "~", cap, "*", "event", "waiting", "jobId", id,
      "prev", state)
  end
  for from = 1, moved, CHUNK do
    local to = math.min(from + CHUNK - 1, moved)
    redis.call("ZREM", KEYS[1], unpack(ids, from, to))
    redis.call("LPUSH", KEYS[2], unpack(ids, from, to))
  end
  wakeWorkers(KEYS[5], queueBlocked(KEYS[3], KEYS[4]))
end

rememberOutcome(KEYS[7], tostring(moved), ARGV[5])
return {moved}
