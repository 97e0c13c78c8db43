--[[ Keep policies of finished jobs (removeOnComplete / removeOnFail).
  pruneFinished(setKey, base, now, count, age, limit): remove, without events, the jobs of a
    finished set older than age seconds (at most limit of them per call) and all but the newest
    count (count > 0); each removed job first leaves its parent's dependencies
    (includes/removeJobData). ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "removeJobData"
local function dropFinishedJob(base, id, now)
  local jobKey = base .. id
  detachFromParent(jobKey)
  deleteJobKeys(jobKey, true)
end

local function pruneFinished(setKey, base, now, count, age, limit)
  if age then
    local cutoff = tonumber(now) - age * 1000
    local old = redis.call("ZREVRANGEBYSCORE", setKey, cutoff, "-inf", "LIMIT", 0, limit)
    for _, id in ipairs(old) do
      dropFinishedJob(base, id, now)
    end
    if #old > 0 then
      if #old < limit then
        redis.call("ZREMRANGEBYSCORE", setKey, "-inf", cutoff)
      else
        for first = 1, #old, 5000 do
          redis.call("ZREM", setKey, unpack(old, first, math.min(first + 4999, #old)))
        end
      end
    end
  end
  if count and count > 0 then
    local surplus = redis.call("ZREVRANGE", setKey, count, -1)
    for _, id in ipairs(surplus) do
      dropFinishedJob(base, id, now)
    end
    redis.call("ZREMRANGEBYRANK", setKey, 0, -(count + 1))
  end
end
