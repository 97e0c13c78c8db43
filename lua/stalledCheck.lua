--[[ stalledCheck: find active jobs whose worker died (BullMQ moveStalledJobsToWait); safe to
  run beside Node's checker: the stalled-check key lets one check run per interval.

  KEYS[1] stalled set  KEYS[2] wait  KEYS[3] active  KEYS[4] stalled-check  KEYS[5] meta
  KEYS[6] marker  KEYS[7] events  KEYS[8] repeat
  ARGV[1] max stalled count  ARGV[2] base key  ARGV[3] now (ms)  ARGV[4] interval ms

  Returns the ids moved back to wait (empty when a check ran less than an interval ago).
  Effects: stalled-check = now PX interval; events trimmed; each id of the previous check still
  in the stalled set whose lock is gone leaves active, gets stc + 1 (and defa "job stalled more
  than allowable limit" when stc > max and it is not a job scheduler's), goes to the front of
  wait (RPUSH, marker unless blocked), events "waiting" prev active then "stalled"; finally the
  stalled set = every id now active. ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"

local stalledKey, activeKey, base = KEYS[1], KEYS[3], ARGV[2]
if redis.call("EXISTS", KEYS[4]) == 1 then
  return {}
end
redis.call("SET", KEYS[4], ARGV[3], "PX", ARGV[4])
redis.call("XTRIM", KEYS[7], "MAXLEN", "~", eventsCap(KEYS[5]))

local limit = tonumber(ARGV[1])
local moved = {}
local suspects = redis.call("SMEMBERS", stalledKey)
if #suspects > 0 then
  redis.call("DEL", stalledKey)
  for _, id in ipairs(suspects) do
    if string.sub(id, 1, 2) == "0:" then
      redis.call("LREM", activeKey, 1, id)
    else
      local jobKey = base .. id
      if redis.call("EXISTS", jobKey .. ":lock") == 0
          and redis.call("LREM", activeKey, 1, id) > 0 then
        local count = redis.call("HINCRBY", jobKey, "stc", 1)
        if count > limit then
          local scheduler = redis.call("HGET", jobKey, "rjk")
          local scheduled = scheduler and (redis.call("EXISTS", KEYS[8] .. ":" .. scheduler) == 1
            or redis.call("ZSCORE", KEYS[8], scheduler))
          if not scheduled then
            redis.call("HSET", jobKey, "defa", "job stalled more than allowable limit")
          end
        end
        enqueueWaiting(KEYS[2], KEYS[6], id, true, queueBlocked(KEYS[5], activeKey))
        redis.call("XADD", KEYS[7], "*", "event", "waiting", "jobId", id, "prev", "active")
        redis.call("XADD", KEYS[7], "*", "event", "stalled", "jobId", id)
        moved[#moved + 1] = id
      end
    end
  end
end

local active = redis.call("LRANGE", activeKey, 0, -1)
for first = 1, #active, 5000 do
  redis.call("SADD", stalledKey, unpack(active, first, math.min(first + 4999, #active)))
end
return moved
