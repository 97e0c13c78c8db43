--[[ retryJobTree: Job.retry_tree() - put a failed flow back to work in one atomic step.

  KEYS[1] root job hash      KEYS[2] outcome key of this call (see includes/callOutcome)

  ARGV[1] "1" to delete attemptsMade (atm) of every retried job
  ARGV[2] "1" to delete attemptsStarted (ats) of every retried job
  ARGV[3] the most jobs the walk may look at (the root and every child key it reads)
  ARGV[4] outcome ttl in ms
  ARGV[5] the hash tag every job key must carry (Redis Cluster), "" for no check

  Returns
    {1, json}        done; json = a list of {jobKey, fromState, toState} triples, deepest
                     jobs first
    {1, json, 1}     a repeated call: the first one's answer, nothing changed again
    {-1, jobKey}     the root, or a child in a parent's :unsuccessful, has no hash (it was
                     removed: the parent could never complete, BullMQ would fail it with -9)
    {-3, state}      the root is neither failed nor waiting for children
    {-101, visited}  the walk would look at more than ARGV[3] jobs
    {-102, jobKey}   a job of the tree, or the failed root's parent, lives outside the
                     root's hash tag (cluster)
  Nothing is written unless the whole walk succeeds (the walk reads, then the writes run).

  The walk starts at the root (failed, or waiting-children: a flow stuck on a failed child)
  and follows every child a parent records in :unsuccessful (failParentOnFailure), :failed
  (ignoreDependencyOnFailure / continueParentOnFailure) or :dependencies (pending, or failed
  without a policy). It enters children that are failed or waiting for children; completed
  children (:processed) and children waiting, delayed or running are left alone.
  Effects:
    * a failed child's entry leaves its parent's :unsuccessful / :failed and joins its
      :dependencies (BullMQ's bookkeeping for a pending child);
    * every failed job leaves the failed set, loses finishedOn, processedOn, failedReason and
      its deferred failure (defa), and atm/ats when asked; then a job with pending
      dependencies goes to waiting-children (score = its timestamp, event "waiting-children"
      prev "failed"), any other as Job.retry does: priority > 0 -> prioritized, else the wait
      list (lifo at the tail), base marker unless its queue is paused or at its global
      concurrency, event "waiting" prev "failed";
    * a failed root with a parent becomes a pending dependency of that parent again, as
      Job.retry does (the parent's own state is left alone).
  Every event is capped at its queue's maxLenEvents.
]]
-- @include "hashTag"
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "restoreParentDependency"

local rootKey, opKey = KEYS[1], KEYS[2]
local limit, tag = tonumber(ARGV[3]), ARGV[5]

local earlier = recallOutcome(opKey)
if earlier then
  return {1, earlier, 1}
end

local function split(jobKey)
  local cut = string.find(jobKey, ":[^:]*$")
  return string.sub(jobKey, 1, cut), string.sub(jobKey, cut + 1)
end


local function stateOf(jobKey)
  local base, id = split(jobKey)
  if redis.call("ZSCORE", base .. "failed", id) then
    return "failed"
  end
  if redis.call("ZSCORE", base .. "waiting-children", id) then
    return "waiting-children"
  end
  return "other"
end

if redis.call("EXISTS", rootKey) == 0 then
  return {-1, rootKey}
end
local rootState = stateOf(rootKey)
if rootState == "other" then
  return {-3, rootState}
end

-- 1. the walk: reads only
local order = {rootKey}       -- jobs entered, parents before children
local failedJobs = {}         -- jobKey -> true
local restores = {}           -- {parentKey, childKey, where}
local seen = {[rootKey] = true}
local visited = 1             -- every job looked at, the root included (bounds the walk)
if rootState == "failed" then
  failedJobs[rootKey] = true
  local rootParent = redis.call("HGET", rootKey, "parentKey")
  if rootParent and tag ~= "" and hashTag(rootParent) ~= tag then
    return {-102, rootParent}
  end
end

local function childrenOf(parentKey)
  local found = {}
  for _, key in ipairs(redis.call("ZRANGE", parentKey .. ":unsuccessful", 0, -1)) do
    found[#found + 1] = {key, "unsuccessful"}
  end
  for _, key in ipairs(redis.call("HKEYS", parentKey .. ":failed")) do
    found[#found + 1] = {key, "failed"}
  end
  for _, key in ipairs(redis.call("SMEMBERS", parentKey .. ":dependencies")) do
    found[#found + 1] = {key, "dependencies"}
  end
  return found
end

local index = 1
while index <= #order do
  local parentKey = order[index]
  index = index + 1
  for _, child in ipairs(childrenOf(parentKey)) do
    local childKey, where = child[1], child[2]
    if tag ~= "" and hashTag(childKey) ~= tag then
      return {-102, childKey}
    end
    if not seen[childKey] then
      seen[childKey] = true
      visited = visited + 1
      if visited > limit then
        return {-101, visited}
      end
      local state = stateOf(childKey)
      if state ~= "other" then
        if redis.call("EXISTS", childKey) == 0 then
          return {-1, childKey}
        end
        order[#order + 1] = childKey
        if state == "failed" then
          failedJobs[childKey] = true
          if where ~= "dependencies" then
            restores[#restores + 1] = {parentKey, childKey, where}
          end
        end
      elseif where == "unsuccessful" and redis.call("EXISTS", childKey) == 0 then
        return {-1, childKey}
      end
    end
  end
end

-- 2. the writes
if failedJobs[rootKey] then
  restoreParentDependency(rootKey, "failed")
end
for _, restore in ipairs(restores) do
  local parentKey, childKey = restore[1], restore[2]
  if restore[3] == "unsuccessful" then
    redis.call("ZREM", parentKey .. ":unsuccessful", childKey)
  else
    redis.call("HDEL", parentKey .. ":failed", childKey)
  end
  redis.call("SADD", parentKey .. ":dependencies", childKey)
end

local cleared = {"finishedOn", "processedOn", "failedReason", "defa"}
if ARGV[1] == "1" then
  cleared[#cleared + 1] = "atm"
end
if ARGV[2] == "1" then
  cleared[#cleared + 1] = "ats"
end

local moved = {}
for position = #order, 1, -1 do
  local jobKey = order[position]
  if failedJobs[jobKey] then
    local base, id = split(jobKey)
    redis.call("ZREM", base .. "failed", id)
    redis.call("HDEL", jobKey, unpack(cleared))
    local cap = eventsCap(base .. "meta")
    local landed
    if redis.call("SCARD", jobKey .. ":dependencies") > 0 then
      local timestamp = tonumber(redis.call("HGET", jobKey, "timestamp")) or 0
      redis.call("ZADD", base .. "waiting-children", timestamp, id)
      redis.call("XADD", base .. "events", "MAXLEN", "~", cap, "*",
        "event", "waiting-children", "jobId", id, "prev", "failed")
      landed = "waiting-children"
    else
      local fields = redis.call("HMGET", jobKey, "priority", "opts")
      local priority = tonumber(fields[1]) or 0
      local blocked = queueBlocked(base .. "meta", base .. "active")
      if priority > 0 then
        enqueuePrioritized(base .. "prioritized", base .. "pc", base .. "marker", id, priority,
          blocked)
        landed = "prioritized"
      else
        local ok, opts = pcall(cjson.decode, fields[2] or "{}")
        local lifo = ok and type(opts) == "table" and opts["lifo"] == true
        enqueueWaiting(base .. "wait", base .. "marker", id, lifo, blocked)
        landed = "waiting"
      end
      redis.call("XADD", base .. "events", "MAXLEN", "~", cap, "*",
        "event", "waiting", "jobId", id, "prev", "failed")
    end
    moved[#moved + 1] = {jobKey, "failed", landed}
  end
end

local reply = cjson.encode(moved)
if #moved == 0 then
  reply = "[]"
end
rememberOutcome(opKey, reply, ARGV[4])
return {1, reply}
