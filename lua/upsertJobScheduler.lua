--[[ upsertJobScheduler: create or replace a job scheduler and queue its next iteration
  (BullMQ 6.7 Queue.upsertJobScheduler / addJobScheduler).

  KEYS[1] repeat zset  KEYS[2] delayed  KEYS[3] wait  KEYS[4] meta  KEYS[5] prioritized
  KEYS[6] marker  KEYS[7] id counter  KEYS[8] events  KEYS[9] pc  KEYS[10] active
  KEYS[11] outcome key of this call (includes/callOutcome)
  ARGV[1] base key  ARGV[2] outcome ttl ms  ARGV[3] scheduler id
  ARGV[4] next ms from the client (cron pattern; ignored for "every")
  ARGV[5] scheduler JSON {name, tz?, pattern?, every?, limit?, startDate?, endDate?, offset?}
  ARGV[6] template data JSON  ARGV[7] template opts JSON (stored short keys)
  ARGV[8] iteration opts JSON (delay and jobId are set here)  ARGV[9] now ms

  Returns {job id, delay} | -10 a pattern iteration's id is taken | -11 32 "every" slots
  in a row are taken. A repeated call returns the first call's answer.
  Effects: a pending (delayed / prioritized / waiting) current iteration is deleted and, for
  an unchanged "every", its slot reused; the hash is rewritten (name, tz, limit, pattern,
  startDate, endDate, every, offset, opts unless {}, data unless {}, ic kept or 1), ZADD
  repeat, INCR id counter, the iteration stored and queued (includes/schedulerIteration). ]]
-- @include "callOutcome"
-- @include "eventsCap"
-- @include "removeJobData"
-- @include "schedulerIteration"

local done = recallOutcome(KEYS[11])
if done then
  return cjson.decode(done)
end
local base, schedulerId, now = ARGV[1], ARGV[3], tonumber(ARGV[9])
local schedulerKey = KEYS[1] .. ":" .. schedulerId
local spec = cjson.decode(ARGV[5])
local opts = cjson.decode(ARGV[8])
local maxEvents = eventsCap(KEYS[4])
local prev = tonumber(redis.call("ZSCORE", KEYS[1], schedulerId))
local every = tonumber(spec["every"])
local repeatOpts = type(opts["repeat"]) == "table" and opts["repeat"] or {}
local offset = tonumber(spec["offset"]) or tonumber(repeatOpts["offset"]) or 0
local nextMs = tonumber(ARGV[4])
local newOffset = offset
local everyChanged = false
if every then
  local from = prev
  if prev and tonumber(redis.call("HGET", schedulerKey, "every")) ~= every then
    from = nil
    everyChanged = true
  end
  nextMs, newOffset = everyNext(from, every, now, offset, spec["startDate"])
end

-- a still pending current iteration is replaced
local replaced = false
if prev then
  local currentId = "repeat:" .. schedulerId .. ":" .. millisText(prev)
  if redis.call("EXISTS", base .. currentId) == 1 then
    if redis.call("ZREM", KEYS[2], currentId) == 1 or redis.call("ZREM", KEYS[5], currentId) == 1
      or redis.call("LREM", KEYS[3], 1, currentId) > 0 then
      deleteJobKeys(base .. currentId, false)
      replaced = true
    end
  end
end
if replaced then
  if every and not everyChanged then
    nextMs = prev
  end
else
  spec["offset"] = newOffset
end

local jobId = "repeat:" .. schedulerId .. ":" .. millisText(nextMs)
if redis.call("EXISTS", base .. jobId) == 1 then
  if not every then
    if not replaced then
      return -10
    end
  else
    local free = false
    for _ = 1, 32 do
      nextMs = nextMs + every
      jobId = "repeat:" .. schedulerId .. ":" .. millisText(nextMs)
      if redis.call("EXISTS", base .. jobId) == 0 then
        free = true
        break
      end
    end
    if not free then
      return -11
    end
  end
end
local delay = math.max(nextMs - now, 0)

-- the scheduler hash, rewritten from scratch (ic survives)
redis.call("ZADD", KEYS[1], nextMs, schedulerId)
local fields = {}
for _, name in ipairs({"tz", "limit", "pattern", "startDate", "endDate", "every"}) do
  if spec[name] then
    fields[#fields + 1] = name
    fields[#fields + 1] = spec[name]
  end
end
local storedOffset = spec["offset"] or tonumber(redis.call("HGET", schedulerKey, "offset"))
if storedOffset then
  fields[#fields + 1] = "offset"
  fields[#fields + 1] = storedOffset
end
if ARGV[7] ~= "{}" and ARGV[7] ~= "" then
  fields[#fields + 1] = "opts"
  fields[#fields + 1] = ARGV[7]
end
if ARGV[6] ~= "{}" and ARGV[6] ~= "" then
  fields[#fields + 1] = "data"
  fields[#fields + 1] = ARGV[6]
end
fields[#fields + 1] = "ic"
fields[#fields + 1] = redis.call("HGET", schedulerKey, "ic") or 1
redis.call("DEL", schedulerKey)
redis.call("HSET", schedulerKey, "name", spec["name"], unpack(fields))
redis.call("INCR", KEYS[7])
local q = {delayed = KEYS[2], wait = KEYS[3], meta = KEYS[4], prioritized = KEYS[5],
  marker = KEYS[6], events = KEYS[8], pc = KEYS[9], active = KEYS[10]}
putIteration(q, base, jobId, schedulerId, spec["name"], ARGV[6], opts, now, delay, maxEvents)
local reply = {jobId, delay}
rememberOutcome(KEYS[11], cjson.encode(reply), ARGV[2])
return reply
