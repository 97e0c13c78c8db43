--[[ finishJob: a worker finishes an active job as completed or failed for good, and (when
  asked) takes the next job in the same call (BullMQ 6.7 moveToFinished).

  KEYS[1] wait  KEYS[2] active  KEYS[3] prioritized  KEYS[4] events  KEYS[5] stalled
  KEYS[6] limiter  KEYS[7] delayed  KEYS[8] meta  KEYS[9] pc
  KEYS[10] the target set (completed or failed)  KEYS[11] job hash  KEYS[12] marker
  KEYS[13] outcome key of this call (see includes/callOutcome; written only when the keep
    policy may remove the job, see "Exactly once" below)
  KEYS[14] optional: <base>metrics:<target> (worker option metrics, includes/minuteMetrics)

  ARGV[1] job id  ARGV[2] now (ms)  ARGV[3] "completed" | "failed"
  ARGV[4] the return value (JSON text) or the failed reason (raw text)
  ARGV[5] base key <prefix>:<queue>:  ARGV[6] lock token ("0" = no lock check)
  ARGV[7] keep count ("" = keep all, 0 = delete now, n = keep newest n)
  ARGV[8] keep age in seconds ("" = none)  ARGV[9] age removal limit per call
  ARGV[10] the job's attempts option (a number)
  ARGV[11] stacktrace JSON to store (failed only; "" = leave)
  ARGV[12] "1" = fetch the next job  ARGV[13] lock ms  ARGV[14] limiter max ("" none)
  ARGV[15] limiter window ms ("" none)  ARGV[16] worker name ("" none)
  ARGV[17] outcome ttl ms  ARGV[18] optional: metrics maxDataPoints ("" / absent = none)

  Returns 0, or a takeNextJob reply (see includes/takeNextJob; a repeated call whose first
  run fetched a job returns that job again with a 5th item 1); errors -1 (no job hash),
  -4 (completed with pending children), -9 (completed with failed children), -2 / -6 (lock
  missing / held by another token), -3 (not in active).
  Effects: lock released, id out of stalled and active, events trimmed, a dedup key owned by
  the job released (expired, or no ttl and naming this job) and a job parked for its dedup
  id by keepLastIfActive created and enqueued (includes/deduplication), parent bookkeeping
  (completed: parent :processed[jobKey] = value and the parent released when no dependency
  remains; failed: includes/childFailure), atm + 1, the keep policy (kept: in the target
  set with score now, finishedOn = now, returnvalue or failedReason stored, defa dropped on
  failure, older jobs pruned; count 0: the job deleted and detached from its parent), event
  "completed"/"failed" (prev active), "retries-exhausted" when a failure leaves
  atm >= attempts, then the optional fetch, and "drained" when wait, active and prioritized
  are empty and nothing else is scheduled.
  Exactly once: with keep all (ARGV[7] and ARGV[8] ""), the job itself proves the outcome, so
  no outcome key is stored (nor read): a repeated call whose lock check fails finds the job in
  the target set with score now, finishedOn now and its returnvalue / failedReason equal to
  ARGV[4] (the same ARGV as the first run), and answers 0, or the job its first run fetched:
  the one in active whose lock holds this token (a worker's token is held by one job at a
  time). Any other keep policy may remove the job, so the outcome key is stored then. ]]
-- @include "callOutcome"
-- @include "workerLock"
-- @include "eventsCap"
-- @include "takeNextJob"

--[[ rare(): the steps only some finishes take (flows, deduplication, keep policies, worker
  metrics), built on first use. A script's top-level functions are built again on every call
  and these are most of them: building them for every finish cost about 6% of the server's
  instructions per job (bench/bench_instructions.py). Includes met first here stay local to
  laterSteps; those above are its upvalues. ]]
local function laterSteps()
  -- @include "releaseParent"
  -- @include "finishedRetention"
  -- @include "childFailure"
  -- @include "deduplication"
  -- @include "minuteMetrics"
  return {releaseParentIfReady = releaseParentIfReady, pruneFinished = pruneFinished,
    detachFromParent = detachFromParent, deleteJobKeys = deleteJobKeys, childFailed = childFailed,
    releaseDedupOnFinish = releaseDedupOnFinish, requeueParkedJob = requeueParkedJob,
    countFinished = countFinished}
end

local built
local function rare()
  built = built or laterSteps()
  return built
end

--[[ finishedByThisCall(q, base, targetKey, jobKey, jobId, argv): nil unless the job shows that
  a first run of this very call finished it (see "Exactly once" above); then the reply that
  run gave, as a repeat: the fetched job with a 5th item 1, or 0. ]]
local function finishedByThisCall(q, base, targetKey, jobKey, jobId, argv)
  local property = argv[3] == "failed" and "failedReason" or "returnvalue"
  local seen = redis.call("HMGET", jobKey, "finishedOn", property)
  local now = tonumber(argv[2])
  if tonumber(seen[1]) ~= now or seen[2] ~= argv[4]
      or tonumber(redis.call("ZSCORE", targetKey, jobId)) ~= now then
    return nil
  end
  if argv[12] == "1" and argv[6] ~= "0" then
    for _, id in ipairs(redis.call("LRANGE", q.active, 0, -1)) do
      if redis.call("GET", base .. id .. ":lock") == argv[6] then
        return {redis.call("HGETALL", base .. id), id, 0, 0, 1}
      end
    end
  end
  return 0
end

local q = {wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
  limiter = KEYS[6], delayed = KEYS[7], meta = KEYS[8], pc = KEYS[9], marker = KEYS[12]}
local jobKey, opKey = KEYS[11], KEYS[13]
local jobId, now, target, value, base = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]

local keepsAll = ARGV[7] == "" and ARGV[8] == ""
if not keepsAll then
  local earlier = recallOutcome(opKey)
  if earlier then
    return replayFetched(base, earlier) or 0
  end
end

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
-- Empty sets do not exist in Redis: one EXISTS tells whether either has members.
if target == "completed"
    and redis.call("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") ~= 0 then
  if redis.call("SCARD", jobKey .. ":dependencies") ~= 0 then
    return -4
  end
  return -9
end
local property = target == "failed" and "failedReason" or "returnvalue"
local left = leaveActive(jobKey, q.active, KEYS[5], jobId, ARGV[6],
  target == "failed" and value, ARGV[11])
if left < 0 then
  return keepsAll and finishedByThisCall(q, base, KEYS[10], jobKey, jobId, ARGV) or left
end
-- One read of meta serves the events cap and the fetch (takeNextJob) below.
local meta = redis.call("HMGET", q.meta, "paused", "concurrency", "max", "duration",
  "opts.maxLenEvents")
local cap = capOrDefault(q.meta, meta[5])

local fields = redis.call("HMGET", jobKey, "parentKey", "parent", "deid", "atm")
local parentKey, parentJson, dedupId = fields[1], fields[2], fields[3]

-- -- deduplication (BullMQ 6.7 moveToFinished step 7, includes/deduplication) --------------
if dedupId then
  rare().releaseDedupOnFinish(base, dedupId, jobId)
  rare().requeueParkedJob(q, base, dedupId, now)
end

if parentKey or parentJson then
  if target == "completed" then
    if not parentKey then
      local parent = cjson.decode(parentJson)
      parentKey = parent["queueKey"] .. ":" .. parent["id"]
    end
    if redis.call("SREM", parentKey .. ":dependencies", jobKey) == 1 then
      redis.call("HSET", parentKey .. ":processed", jobKey, value)
      rare().releaseParentIfReady(parentKey, now)
    end
  else
    rare().childFailed(parentJson, jobKey, value, now)
  end
end

local attemptsMade = (tonumber(fields[4]) or 0) + 1
-- Redis gets text, not Lua numbers (see includes/takeNextJob).
local attemptsText = string.format("%d", attemptsMade)

local keepCount = tonumber(ARGV[7])
if keepCount ~= 0 then
  redis.call("ZADD", KEYS[10], ARGV[2], jobId)
  redis.call("HSET", jobKey, property, value, "finishedOn", ARGV[2], "atm", attemptsText)
  if target == "failed" then
    redis.call("HDEL", jobKey, "defa")
  end
  if not keepsAll then
    rare().pruneFinished(KEYS[10], base, now, keepCount, tonumber(ARGV[8]),
      tonumber(ARGV[9]) or 1000)
  end
else
  if fields[1] then
    rare().detachFromParent(jobKey)
  end
  rare().deleteJobKeys(jobKey, true)
end

redis.call("XADD", q.events, "MAXLEN", "~", cap, "*", "event", target, "jobId", jobId,
  property, value, "prev", "active")
if target == "failed" and attemptsMade >= (tonumber(ARGV[10]) or 0) then
  redis.call("XADD", q.events, "*", "event", "retries-exhausted", "jobId", jobId,
    "attemptsMade", attemptsText)
end

-- -- worker metrics (BullMQ 6.7 moveToFinished step 13, includes/minuteMetrics) --------
local maxPoints = tonumber(ARGV[18] or "")
if maxPoints and KEYS[14] then
  rare().countFinished(KEYS[14], maxPoints, now)
end

if ARGV[12] == "1" then
  local reply = takeNextJob(q, base, ARGV[2], {token = ARGV[6], lockMs = ARGV[13],
    limitMax = ARGV[14], limitWindow = ARGV[15], name = ARGV[16]}, meta)
  if reply then
    if not keepsAll then
      rememberOutcome(opKey, fetchedOutcome(reply), ARGV[17])
    end
    return reply
  end
end

if redis.call("LLEN", q.wait) == 0 and redis.call("LLEN", q.active) == 0
    and redis.call("ZCARD", q.prioritized) == 0 then
  redis.call("XADD", q.events, "*", "event", "drained")
end
if not keepsAll then
  rememberOutcome(opKey, "0", ARGV[17])
end
return 0
