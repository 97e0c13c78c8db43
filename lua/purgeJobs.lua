--[[ purgeJobs: Queue.drain and one step of Queue.clean - hard removal of jobs.

  KEYS[1] events stream   KEYS[2] repeat zset (job schedulers)
  KEYS[3] outcome key of this call (see includes/callOutcome)
  ARGV[1] base key <prefix>:<queue>:   ARGV[2] "drain" | "clean"   ARGV[3] now ms
  ARGV[4] outcome ttl in ms
  drain: ARGV[5] "1" to include delayed.
  clean: ARGV[5] state (completed, failed, delayed, prioritized, wait, paused, active),
         ARGV[6] cutoff ms (jobs at or older than it go), ARGV[7] limit (0 = no limit).

  Returns drain: {count}; clean: {ids removed}; a repeated call {that, 1}.
  Effects, as BullMQ 6.7 drain / cleanJobsInSet: the current iteration of a job scheduler
  is kept; removal is hard: job keys deleted, the job detached from its parent (a parent
  left without dependencies is released). drain emits no event; clean emits one
  "cleaned" with the count. clean's age: completed/failed by their score (finishedOn),
  delayed by processedOn else timestamp, prioritized by timestamp, lists by finishedOn,
  processedOn else timestamp; active jobs holding a lock are skipped.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "removeJobData"

local base, mode, now = ARGV[1], ARGV[2], ARGV[3]
local earlier = recallOutcome(KEYS[3])
if earlier then
  return {cjson.decode(earlier), 1}
end

local function schedulerIteration(id)
  local rjk = redis.call("HGET", base .. id, "rjk")
  if not rjk then
    return false
  end
  local score = redis.call("ZSCORE", KEYS[2], rjk)
  return score ~= false and id == "repeat:" .. rjk .. ":" .. score
end

local function purge(id)
  local jobKey = base .. id
  detachFromParent(jobKey, base)
  deleteJobKeys(jobKey)
end

local LISTS = {wait = true, paused = true, active = true}

if mode == "drain" then
  local count = 0
  local structures = {"wait", "paused", "prioritized"}
  if ARGV[5] == "1" then
    structures[#structures + 1] = "delayed"
  end
  for _, name in ipairs(structures) do
    local key = base .. name
    local ids = LISTS[name] and redis.call("LRANGE", key, 0, -1) or redis.call("ZRANGE", key, 0, -1)
    local kept, gone = {}, {}
    for _, id in ipairs(ids) do
      if schedulerIteration(id) then
        kept[#kept + 1] = id
      else
        purge(id)
        gone[#gone + 1] = id
      end
    end
    count = count + #gone
    if LISTS[name] then
      if #gone > 0 then
        redis.call("DEL", key)
        for from = 1, #kept, 5000 do
          redis.call("RPUSH", key, unpack(kept, from, math.min(from + 4999, #kept)))
        end
      end
    else
      for from = 1, #gone, 5000 do
        redis.call("ZREM", key, unpack(gone, from, math.min(from + 4999, #gone)))
      end
    end
  end
  rememberOutcome(KEYS[3], cjson.encode(count), ARGV[4])
  return {count}
end

local state, cutoff, limit = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local key = base .. state
local removed = {}
local function full()
  return limit > 0 and #removed >= limit
end
local function oldEnough(id, fields)
  local values = redis.call("HMGET", base .. id, unpack(fields))
  for _, v in ipairs(values) do
    if v then
      return tonumber(v) <= cutoff
    end
  end
  return false
end

if state == "completed" or state == "failed" then
  local ids
  if limit > 0 then
    ids = redis.call("ZRANGEBYSCORE", key, 0, cutoff, "LIMIT", 0, limit)
  else
    ids = redis.call("ZRANGEBYSCORE", key, 0, cutoff)
  end
  for _, id in ipairs(ids) do
    redis.call("ZREM", key, id)
    purge(id)
    removed[#removed + 1] = id
  end
elseif state == "delayed" or state == "prioritized" then
  local fields = state == "delayed" and {"processedOn", "timestamp"} or {"timestamp"}
  for _, id in ipairs(redis.call("ZRANGE", key, 0, -1)) do
    if full() then
      break
    end
    if not schedulerIteration(id) and oldEnough(id, fields) then
      redis.call("ZREM", key, id)
      purge(id)
      removed[#removed + 1] = id
    end
  end
else
  local ids = redis.call("LRANGE", key, limit > 0 and -limit or 0, -1)
  for i = #ids, 1, -1 do
    local id = ids[i]
    if full() then
      break
    end
    local skip = state == "active" and redis.call("EXISTS", base .. id .. ":lock") == 1
    if not skip and oldEnough(id, {"finishedOn", "processedOn", "timestamp"}) then
      redis.call("LREM", key, 0, id)
      purge(id)
      removed[#removed + 1] = id
    end
  end
end
redis.call("XADD", KEYS[1], "*", "event", "cleaned", "count", #removed)
rememberOutcome(KEYS[3], cjson.encode(removed), ARGV[4])
return {removed}
