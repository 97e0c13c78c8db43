--[[ addFlow: FlowProducer.add / addBulk - store a whole tree of jobs (possibly across queues
  of one Redis) in a single atomic call, as BullMQ 6.7's FlowProducer does in one MULTI.

  KEYS[1] outcome key of this call (see includes/callOutcome)
  KEYS[2...] the meta hash of every queue the flow touches (declared for Redis Cluster routing;
    every key the script builds must hash to the same slot)

  ARGV[1] outcome ttl in ms
  ARGV[2] "now" in ms (client clock; used when a parent is released at the end)
  ARGV[3...] 12 values per node, parents before their children:
    queue base key <prefix>:<queue>:, job id, name, timestamp, data JSON, opts JSON, delay ms,
    priority, "1" lifo / "0", parent key or "", parent JSON or "", "1" has children / "0"

  Returns
    {0, {ids...}, {indexes of duplicates...}}   done (ids in the order given)
    {1, {ids...}, {indexes...}}                 a repeated call: the first one did it
    {-5, index}   a node attached to a job outside the flow names a parent hash that is
                  missing; nothing was written
    {-7, index}   a node attached to a job outside the flow has an existing custom id owned by
                  another existing parent; nothing was written
  Effects per node, as BullMQ 6.7 addParentJob / addStandardJob / addDelayedJob /
  addPrioritizedJob with the "defer parent release" flag: INCR the queue's id counter; hash
  name, data, opts, timestamp, delay, priority [, parentKey, parent]; "added"; a node with
  children -> waiting-children (score = timestamp, "waiting-children" event, no marker); any
  other -> delayed / prioritized / wait with its events and markers; SADD into
  <parentKey>:dependencies. An existing custom id -> "duplicated", hash untouched: attached to
  the new parent (a completed one only records its returnvalue in <parentKey>:processed); when
  it belongs to another existing parent it is left alone and that new parent is not released
  by this call (BullMQ's transient flowAttachmentFailed mark, kept here in a Lua table).
  Finally every parent the nodes named, in order of first mention, is released when it has no
  pending dependency and still waits for children (includes/releaseParent).
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "releaseParent"
-- @include "delayedScore"
-- @include "landNewJob"

local WIDTH = 12
local now = ARGV[2]

local earlier = recallOutcome(KEYS[1])
if earlier then
  local saved = cjson.decode(earlier)
  return {1, saved[1], saved[2]}
end

local function field(i, n)
  return ARGV[2 + (i - 1) * WIDTH + n]
end
local total = (#ARGV - 2) / WIDTH

-- Which job keys the flow itself creates: a node whose parent is not one of them is attached
-- to a job outside the flow, and that attachment is checked before anything is written.
local inFlow = {}
for i = 1, total do
  inFlow[field(i, 1) .. field(i, 2)] = true
end
for i = 1, total do
  local parentKey = field(i, 10)
  if parentKey ~= "" and not inFlow[parentKey] then
    if redis.call("EXISTS", parentKey) == 0 then
      return {-5, i}
    end
    local recorded = redis.call("HGET", field(i, 1) .. field(i, 2), "parentKey")
    if recorded and recorded ~= parentKey and redis.call("EXISTS", recorded) == 1 then
      return {-7, i}
    end
  end
end

-- Per queue: events cap, blocked (paused/maxed), and whether to wake workers / mark delays.
local queues = {}
local function queueOf(base)
  local q = queues[base]
  if not q then
    local cap = eventsCap(base .. "meta")
    q = {
      cap = cap,
      blocked = queueBlocked(base .. "meta", base .. "active"),
      wake = false,
      delayed = false,
      at = {delayed = base .. "delayed", prioritized = base .. "prioritized", pc = base .. "pc",
        wait = base .. "wait", events = base .. "events", cap = cap},
    }
    queues[base] = q
  end
  return q
end

local ids, duplicates = {}, {}
local parents, parentOrder = {}, {}
local attachmentFailed = {}

-- An existing job met again by custom id (BullMQ handleDuplicatedJob, deferred release).
-- Returns false when it belongs to another existing parent (no "duplicated" event then).
local function meetExisting(base, jobId, jobKey, parentKey, parentJson, q)
  local recorded = redis.call("HGET", jobKey, "parentKey")
  if recorded and recorded ~= parentKey and redis.call("EXISTS", recorded) == 1 then
    if parentKey ~= "" then
      attachmentFailed[parentKey] = true
      return false
    end
  elseif parentKey ~= "" then
    if redis.call("ZSCORE", base .. "completed", jobId) then
      local value = redis.call("HGET", jobKey, "returnvalue") or "null"
      redis.call("HSET", parentKey .. ":processed", jobKey, value)
    else
      redis.call("SADD", parentKey .. ":dependencies", jobKey)
    end
    redis.call("HSET", jobKey, "parentKey", parentKey, "parent", parentJson)
  end
  redis.call("XADD", base .. "events", "MAXLEN", "~", q.cap, "*", "event", "duplicated",
    "jobId", jobId)
  return true
end

for i = 1, total do
  local base, jobId, name, timestamp = field(i, 1), field(i, 2), field(i, 3), field(i, 4)
  local delay, priority = tonumber(field(i, 7)), tonumber(field(i, 8))
  local parentKey, parentJson = field(i, 10), field(i, 11)
  local jobKey = base .. jobId
  local events = base .. "events"
  local q = queueOf(base)
  redis.call("INCR", base .. "id")
  ids[i] = jobId
  if parentKey ~= "" and not parents[parentKey] then
    parents[parentKey] = true
    parentOrder[#parentOrder + 1] = parentKey
  end

  if redis.call("EXISTS", jobKey) == 1 then
    if meetExisting(base, jobId, jobKey, parentKey, parentJson, q) then
      duplicates[#duplicates + 1] = i
    end
  else
    if parentKey ~= "" then
      redis.call("HSET", jobKey, "name", name, "data", field(i, 5), "opts", field(i, 6),
        "timestamp", timestamp, "delay", delay, "priority", priority,
        "parentKey", parentKey, "parent", parentJson)
    else
      redis.call("HSET", jobKey, "name", name, "data", field(i, 5), "opts", field(i, 6),
        "timestamp", timestamp, "delay", delay, "priority", priority)
    end
    redis.call("XADD", events, "*", "event", "added", "jobId", jobId, "name", name)

    if field(i, 12) == "1" then
      redis.call("ZADD", base .. "waiting-children", timestamp, jobId)
      redis.call("XADD", events, "MAXLEN", "~", q.cap, "*", "event", "waiting-children",
        "jobId", jobId)
      addDependency(parentKey, jobKey)
    else
      local lifo = field(i, 9) == "1"
      if landNewJob(q.at, jobId, jobKey, timestamp, delay, priority, lifo, parentKey)
          == "delayed" then
        q.delayed = true
      else
        q.wake = true
      end
    end
  end
end

for base, q in pairs(queues) do
  if q.wake then
    wakeWorkers(base .. "marker", q.blocked)
  end
  if q.delayed then
    markDelayed(base .. "marker", base .. "delayed")
  end
end

-- The 6.7 rule: parents are released only once the whole tree is in.
for _, parentKey in ipairs(parentOrder) do
  if not attachmentFailed[parentKey] and redis.call("EXISTS", parentKey) == 1 then
    releaseParentIfReady(parentKey, now)
  end
end

rememberOutcome(KEYS[1], cjson.encode({ids, duplicates}), ARGV[1])
return {0, ids, duplicates}
