--[[ addJobs: Queue.add / Queue.addBulk - store one or many new jobs in a single atomic call.

  KEYS[1]  wait list            KEYS[6]  priority counter (pc)
  KEYS[2]  meta hash            KEYS[7]  events stream
  KEYS[3]  id counter           KEYS[8]  marker zset
  KEYS[4]  delayed zset         KEYS[9]  active list
  KEYS[5]  prioritized zset     KEYS[10] completed zset
  KEYS[11] outcome key of this call (see includes/callOutcome): for one new job its id (bare
    when all digits, else "=<id>"), else the JSON of {ids, duplicates, deduped, rejected};
    always stored, because an id from INCR cannot be found again from the job's state

  ARGV[1] base key <prefix>:<queue>:
  ARGV[2] outcome ttl in ms
  ARGV[3] "now" in ms (client clock; used when a duplicate child releases its parent)
  ARGV[4...] 11 values per job: custom id or "", name, timestamp, data JSON, opts JSON,
    delay ms, priority, "1" lifo / "0", parent key or "", parent JSON or "",
    deduplication spec JSON (opts.de) or ""

  Returns
    {0, {ids...}, {indexes of duplicates...}, {indexes of deduplicated...},
       {ids those deduplicated jobs would have had...}, {flat hash of each owner...}}
                                                done (ids in the order given; a deduplicated
                                                job's id is its existing owner's)
    {1, ...same...}                             a repeated call: the first one did it
    {-5, index}   a parent job hash is missing; nothing was written (not even the counter)
    {-7, index}   a custom id belongs to a job attached to another existing parent;
                  nothing was written
  Effects per job, as BullMQ 6.7 addStandardJob / addDelayedJob / addPrioritizedJob:
  INCR id (always, also for custom and duplicate ids); hash name, data, opts, timestamp,
  delay, priority [, parentKey, parent]; "added"; then delay > 0 -> delayed set (score
  due*4096 + sequence within the ms), "delayed" event (delay = due ms), delay marker;
  priority > 0 -> prioritized ("waiting"); else wait (LPUSH, lifo RPUSH; "waiting"); base
  marker unless paused/maxed; parent -> SADD <parentKey>:dependencies. A custom id that
  exists -> "duplicated", hash untouched (a new parent is attached as BullMQ 6.7 does).
  Deduplication (includes/deduplication) runs after the custom-id check, as in BullMQ: a
  job whose dedup id has a live owner is not stored (the owner's id is answered); stored
  jobs with a dedup id get the field deid.
]]
-- @include "callOutcome"
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "releaseParent"
-- @include "delayedScore"
-- @include "deduplication"
-- @include "landNewJob"

local WIDTH = 11
local base = ARGV[1]

-- -- deduplication: the owners' hashes are read when replying (also on a replay) ----------
local function ownersOf(ids, deduped)
  local hashes = {}
  for n, index in ipairs(deduped) do
    hashes[n] = redis.call("HGETALL", ARGV[1] .. ids[index])
  end
  return hashes
end

-- The outcome: for the common single new job its id, bare when all digits (Redis then stores
-- an integer, no string) else as "=<id>"; otherwise the JSON of the four lists.
local function addedOutcome(ids, duplicates, deduped, rejected)
  if #ids == 1 and #duplicates == 0 and #deduped == 0 and #rejected == 0 then
    local id = tostring(ids[1])
    if string.match(id, "^[1-9]%d*$") and #id < 16 then
      return id
    end
    return "=" .. id
  end
  return cjson.encode({ids, duplicates, deduped, rejected})
end

local earlier = recallOutcome(KEYS[11])
if earlier then
  local saved
  if string.sub(earlier, 1, 1) == "=" then
    saved = {{string.sub(earlier, 2)}, {}}
  elseif string.sub(earlier, 1, 1) ~= "[" then
    saved = {{earlier}, {}}
  else
    saved = cjson.decode(earlier)
  end
  local deduped, rejected = saved[3] or {}, saved[4] or {}
  return {1, saved[1], saved[2], deduped, rejected, ownersOf(saved[1], deduped)}
end

local function field(i, n)
  return ARGV[3 + (i - 1) * WIDTH + n]
end
local total = (#ARGV - 3) / WIDTH

-- Refuse the whole call before writing anything.
for i = 1, total do
  local parentKey = field(i, 9)
  if parentKey ~= "" then
    if redis.call("EXISTS", parentKey) == 0 then
      return {-5, i}
    end
    local customId = field(i, 1)
    if customId ~= "" then
      local recorded = redis.call("HGET", base .. customId, "parentKey")
      if recorded and recorded ~= parentKey and redis.call("EXISTS", recorded) == 1 then
        return {-7, i}
      end
    end
  end
end

local cap = eventsCap(KEYS[2])
local blocked = queueBlocked(KEYS[2], KEYS[9])
local wake, anyDelayed = false, false
local ids, duplicates = {}, {}
local deduped, rejected = {}, {}
local dedupCtx = {base = base, events = KEYS[7], delayed = KEYS[4], active = KEYS[9], cap = cap}
local at = {delayed = KEYS[4], prioritized = KEYS[5], pc = KEYS[6], wait = KEYS[1],
  events = KEYS[7], cap = cap}

local function attachDuplicate(jobId, jobKey, parentKey, parentJson)
  local recorded = redis.call("HGET", jobKey, "parentKey")
  if recorded and recorded ~= parentKey and redis.call("EXISTS", recorded) == 1 then
    return
  end
  if redis.call("ZSCORE", KEYS[10], jobId) then
    local value = redis.call("HGET", jobKey, "returnvalue") or "null"
    redis.call("HSET", parentKey .. ":processed", jobKey, value)
    releaseParentIfReady(parentKey, ARGV[3])
  else
    redis.call("SADD", parentKey .. ":dependencies", jobKey)
  end
  redis.call("HSET", jobKey, "parentKey", parentKey, "parent", parentJson)
end

for i = 1, total do
  local customId, name, timestamp = field(i, 1), field(i, 2), field(i, 3)
  local delay, priority = tonumber(field(i, 6)), tonumber(field(i, 7))
  local parentKey, parentJson = field(i, 9), field(i, 10)
  local counter = redis.call("INCR", KEYS[3])
  local jobId = customId ~= "" and customId or tostring(counter)
  local jobKey = base .. jobId
  ids[i] = jobId

  if customId ~= "" and redis.call("EXISTS", jobKey) == 1 then
    if parentKey ~= "" then
      attachDuplicate(jobId, jobKey, parentKey, parentJson)
    end
    redis.call("XADD", KEYS[7], "MAXLEN", "~", cap, "*", "event", "duplicated", "jobId", jobId)
    duplicates[#duplicates + 1] = i
  else
    local spec, ownerId = nil, nil
    if field(i, 11) ~= "" then
      spec = cjson.decode(field(i, 11))
      local rescheduled
      ownerId, rescheduled = dedupOnAdd(spec, jobId, {name = name, data = field(i, 4),
        opts = field(i, 5), timestamp = tonumber(timestamp), delay = delay}, dedupCtx)
      anyDelayed = anyDelayed or rescheduled
    end
    if ownerId then
      ids[i] = ownerId
      deduped[#deduped + 1] = i
      rejected[#rejected + 1] = jobId
    else
      local extra = {}
      if parentKey ~= "" then
        extra = {"parentKey", parentKey, "parent", parentJson}
      end
      if spec then
        extra[#extra + 1] = "deid"
        extra[#extra + 1] = spec["id"]
      end
      redis.call("HSET", jobKey, "name", name, "data", field(i, 4), "opts", field(i, 5),
        "timestamp", timestamp, "delay", delay, "priority", priority, unpack(extra))
      redis.call("XADD", KEYS[7], "*", "event", "added", "jobId", jobId, "name", name)

      local lifo = field(i, 8) == "1"
      local landed = landNewJob(at, jobId, jobKey, timestamp, delay, priority, lifo, parentKey)
      if landed == "delayed" then
        anyDelayed = true
      else
        wake = true
      end
    end
  end
end

if wake then
  wakeWorkers(KEYS[8], blocked)
end
if anyDelayed then
  markDelayed(KEYS[8], KEYS[4])
end

rememberOutcome(KEYS[11], addedOutcome(ids, duplicates, deduped, rejected), ARGV[2])
return {0, ids, duplicates, deduped, rejected, ownersOf(ids, deduped)}
