--[[ removeJobTree: Job.remove() - delete a job (and, optionally, its children) for good.

  KEYS[1] job hash   KEYS[2] repeat zset (job schedulers)
  KEYS[3] outcome key of this call (see includes/callOutcome)
  ARGV[1] job id   ARGV[2] "1" to remove children too   ARGV[3] base key
  ARGV[4] now (ms)   ARGV[5] outcome ttl in ms

  Returns 1 removed (or nothing to remove), {1, 1} repeated call,
    0 the job or a child to remove is locked by a worker (nothing changed),
   -8 the job is the current iteration of a job scheduler.
  Effects, as BullMQ 6.7 removeJob: detached from its parent (a parent left without
  dependencies is released to wait with a "waiting" event); with children: every child
  listed in :processed, :failed, :unsuccessful, then :dependencies removed the same way
  (so removing the last pending child releases the job first, which then leaves "wait");
  the id leaves whatever
  structure held it; keys deleted (with the dedup key and its parked dn: hash when the
  job owns its deduplication id); "removed" (prev = where it was) capped.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "removeJobData"

local now = ARGV[4]
if recallOutcome(KEYS[3]) then
  return {1, 1}
end

local rjk = redis.call("HGET", KEYS[1], "rjk")
if rjk then
  local score = redis.call("ZSCORE", KEYS[2], rjk)
  if score and ARGV[1] == "repeat:" .. rjk .. ":" .. score then
    return -8
  end
end

local function split(jobKey)
  local cut = string.find(jobKey, ":[^:]*$")
  return string.sub(jobKey, 1, cut), string.sub(jobKey, cut + 1)
end

-- Finished children first, pending ones last: removing the last pending child releases the
-- parent to wait (a "waiting" event) just before the parent itself goes, as in BullMQ.
local function childrenOf(jobKey)
  local out = {}
  for _, sub in ipairs({":processed", ":failed"}) do
    for _, key in ipairs(redis.call("HKEYS", jobKey .. sub)) do
      out[#out + 1] = key
    end
  end
  for _, key in ipairs(redis.call("ZRANGE", jobKey .. ":unsuccessful", 0, -1)) do
    out[#out + 1] = key
  end
  for _, key in ipairs(redis.call("SMEMBERS", jobKey .. ":dependencies")) do
    out[#out + 1] = key
  end
  return out
end

local function locked(jobKey, deep)
  if redis.call("EXISTS", jobKey .. ":lock") == 1 then
    return true
  end
  if deep then
    for _, child in ipairs(redis.call("SMEMBERS", jobKey .. ":dependencies")) do
      if locked(child, true) then
        return true
      end
    end
  end
  return false
end

local withChildren = ARGV[2] == "1"
if locked(KEYS[1], withChildren) then
  return 0
end

local zsets = {"completed", "waiting-children", "delayed", "failed", "prioritized"}
local lists = {"wait", "paused", "active"}

local function removeOne(jobKey)
  local base, id = split(jobKey)
  if redis.call("EXISTS", jobKey) == 0 then
    return
  end
  detachFromParent(jobKey)
  if withChildren then
    for _, child in ipairs(childrenOf(jobKey)) do
      removeOne(child)
    end
  end
  local prev = "unknown"
  for _, name in ipairs(zsets) do
    if redis.call("ZREM", base .. name, id) == 1 then
      prev = name
      break
    end
  end
  if prev == "unknown" then
    for _, name in ipairs(lists) do
      if redis.call("LREM", base .. name, 0, id) > 0 then
        prev = name
        break
      end
    end
  end
  deleteJobKeys(jobKey)
  redis.call("XADD", base .. "events", "MAXLEN", "~", eventsCap(base .. "meta"), "*",
    "event", "removed", "jobId", id, "prev", prev)
end

removeOne(KEYS[1])
rememberOutcome(KEYS[3], "1", ARGV[5])
return 1
