--[[ nextSchedulerIteration: a worker has fetched an iteration of a job scheduler; create the
  next one (what a BullMQ 6.7 worker does through updateJobScheduler after moveToActive).

  KEYS[1] repeat zset  KEYS[2] delayed  KEYS[3] wait  KEYS[4] meta  KEYS[5] prioritized
  KEYS[6] marker  KEYS[7] id counter  KEYS[8] events  KEYS[9] pc  KEYS[10] active
  KEYS[11] outcome key of this call (includes/callOutcome)
  ARGV[1] base key  ARGV[2] outcome ttl ms  ARGV[3] scheduler id  ARGV[4] fetched job id
  ARGV[5] next ms computed by the client (cron pattern), "" for an "every" scheduler
  ARGV[6] opts JSON of the next iteration (delay and jobId are set here)  ARGV[7] now ms
  ARGV[8] "1" to require the scheduler hash's "ic" field (ids shaped like legacy keys)

  Returns the new job id; "" when nothing was created: the scheduler is gone, the fetched
  job is not its current iteration (nothing written), or the next iteration already exists
  (then a "duplicated" event). A repeated call returns the first call's answer. Effects on success:
  ZADD repeat <next> id, HINCRBY ic 1, INCR id counter, the job stored and queued as
  includes/schedulerIteration putIteration. ]]
-- @include "callOutcome"
-- @include "eventsCap"
-- @include "schedulerIteration"

local done = recallOutcome(KEYS[11])
if done then
  return done
end
local schedulerId = ARGV[3]
local now = tonumber(ARGV[7])
local schedulerKey = KEYS[1] .. ":" .. schedulerId
local prev = tonumber(redis.call("ZSCORE", KEYS[1], schedulerId))
if prev == nil or (ARGV[8] == "1" and redis.call("HEXISTS", schedulerKey, "ic") == 0) then
  return ""
end
local fields = redis.call("HMGET", schedulerKey, "name", "data", "every", "startDate", "offset")
local opts = cjson.decode(ARGV[6])
local repeatOpts = type(opts["repeat"]) == "table" and opts["repeat"] or {}
local nextMs = tonumber(ARGV[5])
local every = tonumber(fields[3]) or tonumber(repeatOpts["every"])
if every then
  nextMs = everyNext(prev, every, now, fields[5] or repeatOpts["offset"] or 0, fields[4])
end
if nextMs == nil or ARGV[4] ~= "repeat:" .. schedulerId .. ":" .. millisText(prev) then
  return ""
end
local maxEvents = eventsCap(KEYS[4])
local nextId = "repeat:" .. schedulerId .. ":" .. millisText(nextMs)
if redis.call("EXISTS", ARGV[1] .. nextId) == 1 then
  redis.call("XADD", KEYS[8], "MAXLEN", "~", maxEvents, "*", "event", "duplicated", "jobId", nextId)
  rememberOutcome(KEYS[11], "", ARGV[2])
  return ""
end
redis.call("ZADD", KEYS[1], nextMs, schedulerId)
redis.call("HINCRBY", schedulerKey, "ic", 1)
redis.call("INCR", KEYS[7])
local q = {repeatKey = KEYS[1], delayed = KEYS[2], wait = KEYS[3], meta = KEYS[4],
  prioritized = KEYS[5], marker = KEYS[6], events = KEYS[8], pc = KEYS[9], active = KEYS[10]}
putIteration(q, ARGV[1], nextId, schedulerId, fields[1] or "", fields[2] or "{}", opts, now,
  math.max(nextMs - now, 0), maxEvents)
rememberOutcome(KEYS[11], nextId, ARGV[2])
return nextId
