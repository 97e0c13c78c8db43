--[[ removeJobScheduler: delete a job scheduler and its pending delayed iteration
  (BullMQ 6.7 removeJobScheduler).

  KEYS[1] repeat zset  KEYS[2] delayed  KEYS[3] events
  ARGV[1] base key  ARGV[2] scheduler id
  Returns 1 removed, 0 no such scheduler (idempotent: a repeated call answers 0).
  Effects: the delayed iteration (if still delayed) deleted with a "removed" event (prev
  delayed, uncapped); the repeat zset entry and the repeat:<id> hash deleted. ]]
-- @include "removeJobData"
-- @include "schedulerIteration"

local score = tonumber(redis.call("ZSCORE", KEYS[1], ARGV[2]))
if score then
  local jobId = "repeat:" .. ARGV[2] .. ":" .. millisText(score)
  if redis.call("ZREM", KEYS[2], jobId) == 1 then
    deleteJobKeys(ARGV[1] .. jobId, true)
    redis.call("XADD", KEYS[3], "*", "event", "removed", "jobId", jobId, "prev", "delayed")
  end
end
if redis.call("ZREM", KEYS[1], ARGV[2]) == 1 then
  redis.call("DEL", KEYS[1] .. ":" .. ARGV[2])
  return 1
end
return 0
