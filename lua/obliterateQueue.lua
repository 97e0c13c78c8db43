--[[ obliterateQueue: one step of Queue.obliterate - delete a paused queue and all its jobs.

  KEYS[1] meta hash   KEYS[2] active list
  ARGV[1] base key <prefix>:<queue>:   ARGV[2] budget (jobs per call)   ARGV[3] "1" force

  Returns 1 budget used up (call again), 0 the queue is gone, -1 not paused,
  -2 has active jobs (without force).
  Idempotent (a repeated call just carries on), so it takes no outcome key.
  Order, as BullMQ 6.7 obliterate: active (with locks), delayed, schedulers, completed,
  wait, legacy paused, prioritized, failed; then the queue's own keys.
]]
local base = ARGV[1]
local budget = tonumber(ARGV[2])
if redis.call("HEXISTS", KEYS[1], "paused") == 0 then
  return -1
end
if ARGV[3] ~= "1" and redis.call("LLEN", KEYS[2]) > 0 then
  return -2
end

local function dropJobs(key, ids)
  for _, id in ipairs(ids) do
    local jobKey = base .. id
    redis.call("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
      jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful", jobKey .. ":lock")
    budget = budget - 1
  end
end

local lists = {active = true, wait = true, paused = true}
for _, name in ipairs({"active", "delayed", "repeat", "completed", "wait", "paused",
                       "prioritized", "failed"}) do
  local key = base .. name
  local ids
  if lists[name] then
    ids = redis.call("LRANGE", key, -budget, -1)
    redis.call("LTRIM", key, 0, -(#ids + 1))
  else
    ids = redis.call("ZRANGE", key, 0, budget - 1)
    if #ids > 0 then
      redis.call("ZREM", key, unpack(ids))
    end
  end
  if name == "repeat" then
    for _, id in ipairs(ids) do
      redis.call("DEL", base .. "repeat:" .. id)
      budget = budget - 1
    end
  else
    dropJobs(key, ids)
  end
  if budget <= 0 then
    return 1
  end
end

redis.call("DEL", base .. "events", base .. "delay", base .. "stalled-check",
  base .. "stalled", base .. "id", base .. "pc", base .. "marker", base .. "meta",
  base .. "metrics:completed", base .. "metrics:completed:data",
  base .. "metrics:failed", base .. "metrics:failed:data", base .. "priority")
return 0
