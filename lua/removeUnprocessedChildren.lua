--[[ removeUnprocessedChildren: Job.removeUnprocessedChildren() - delete a parent's pending
  children (and their own pending children), keeping the parent.

  KEYS[1] parent job hash   KEYS[2] outcome key of this call (see includes/callOutcome)
  ARGV[1] outcome ttl in ms
  ARGV[2] the hash tag every child key must carry (Redis Cluster), "" for no check

  Returns a JSON text: {"removed": list of {jobKey, prev} pairs, "released": list of
    parent keys}; or {-102, jobKey} when a pending child (at any depth) lives outside the
    tag: checked by a read-only walk first, so nothing is changed then
    in the order things happened; a repeated call returns the first call's text with
    "replayed": true added.
  Effects, as BullMQ 6.7 removeUnprocessedChildren (removeJobWithChildren with
  ignoreProcessed and ignoreLocked): for every child listed in the parent's :dependencies
  (children already processed, failed-for-good or ignored are not looked at), depth first:
    * skipped, with its whole subtree, when it holds a lock (a worker is running it) or sits
      in its queue's failed set;
    * taken out of its parent's :dependencies; a parent left with none that waits for
      children goes to the tail of its wait list (RPUSH, base marker unless that queue is
      paused or at its global concurrency) with "waiting" prev "waiting-children";
    * its own pending children removed the same way;
    * out of whatever state held it (prev = that state, "unknown" if none), its keys and
      owned deduplication key deleted, and "removed" prev <state> (capped) when it had keys.
]]
-- @include "callOutcome"
-- @include "hashTag"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "removeJobData"

local earlier = recallOutcome(KEYS[2])
if earlier then
  local reply = cjson.decode(earlier)
  reply["replayed"] = true
  return cjson.encode(reply)
end

local removed, released = {}, {}
local zsets = {"completed", "waiting-children", "delayed", "failed", "prioritized"}
local lists = {"wait", "paused", "active"}

local function split(jobKey)
  local cut = string.find(jobKey, ":[^:]*$")
  return string.sub(jobKey, 1, cut), string.sub(jobKey, cut + 1)
end

local function leaveParent(childKey, parentKey)
  local depsKey = parentKey .. ":dependencies"
  if redis.call("SREM", depsKey, childKey) == 0 or redis.call("SCARD", depsKey) > 0 then
    return
  end
  local base, id = split(parentKey)
  if redis.call("ZREM", base .. "waiting-children", id) == 0 then
    return
  end
  enqueueWaiting(base .. "wait", base .. "marker", id, true,
    queueBlocked(base .. "meta", base .. "active"))
  redis.call("XADD", base .. "events", "*", "event", "waiting", "jobId", id,
    "prev", "waiting-children")
  released[#released + 1] = parentKey
end

local function stateLeft(base, id)
  for _, name in ipairs(zsets) do
    if redis.call("ZREM", base .. name, id) == 1 then
      return name
    end
  end
  for _, name in ipairs(lists) do
    if redis.call("LREM", base .. name, 1, id) == 1 then
      return name
    end
  end
  return "unknown"
end

local removePending

local function removeChild(childKey, parentKey)
  local base, id = split(childKey)
  if redis.call("EXISTS", childKey .. ":lock") == 1
      or redis.call("ZSCORE", base .. "failed", id) then
    return
  end
  leaveParent(childKey, parentKey)
  removePending(childKey)
  local prev = stateLeft(base, id)
  local existed = redis.call("EXISTS", childKey, childKey .. ":logs", childKey .. ":dependencies",
    childKey .. ":processed", childKey .. ":failed", childKey .. ":unsuccessful") > 0
  deleteJobKeys(childKey)
  if existed then
    redis.call("XADD", base .. "events", "MAXLEN", "~", eventsCap(base .. "meta"), "*",
      "event", "removed", "jobId", id, "prev", prev)
    removed[#removed + 1] = {childKey, prev}
  end
end

removePending = function(parentKey)
  for _, childKey in ipairs(redis.call("SMEMBERS", parentKey .. ":dependencies")) do
    removeChild(childKey, parentKey)
  end
end

local tag = ARGV[2] or ""

-- Read-only first: a child in another slot would abort the script half-way on a cluster.
local function foreignChild(parentKey)
  for _, childKey in ipairs(redis.call("SMEMBERS", parentKey .. ":dependencies")) do
    if hashTag(childKey) ~= tag then
      return childKey
    end
    local deeper = foreignChild(childKey)
    if deeper then
      return deeper
    end
  end
  return nil
end

if tag ~= "" then
  local foreign = foreignChild(KEYS[1])
  if foreign then
    return {-102, foreign}
  end
end

removePending(KEYS[1])

local reply = cjson.encode({removed = removed, released = released})
rememberOutcome(KEYS[2], reply, ARGV[1])
return reply
