--[[ What a BullMQ worker does to get work (moveToActive / fetchNextJob).

  promoteDueJobs(q, base, now, blocked): delayed jobs due by now (at most 1000) go to wait
    (LPUSH, the back of the line; lifo ignored) or, with a priority, to prioritized; each gets
    delay 0 and an uncapped "waiting" event with prev "delayed"; then the base marker unless
    blocked. Runs even when the queue is paused.

  takeNextJob(q, base, now, w, meta) with
    now: the time in ms as the caller received it (ARGV text, digits)
    q: table of keys wait, active, prioritized, events, limiter, delayed, meta, pc, marker
    w: table token, lockMs, limitMax, limitWindow, name (strings; "" = not set)
    meta: optional, the queue meta fields paused, concurrency, max, duration as read by the
      caller in this call (read here when nil)
  returns
    {flat job hash, id, 0, 0}   a job moved to active: lock token set for lockMs (unless the
                                token is "0"), processedOn = now, pb = name, ats + 1, an
                                "active" event (prev waiting), the base marker re-added so
                                sibling workers look too, the limiter counted (not for a job
                                with "defa", as BullMQ 6.7)
    {0, 0, ttl, 0}              rate limited for ttl more ms
    {0, 0, 0, 0}                paused or at global concurrency
    {0, 0, 0, due}              nothing now; the earliest delayed job is due at due ms
    nil                         nothing at all
  The wait list tail wins over prioritized jobs (lowest score). Limits: meta "max" else the
  worker's max; window: the worker's else meta "duration".
  Numbers reach Redis as text: redis.call formats a Lua number with "%.17g", which costs
  more than the command it feeds on this hot path. ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "delayedScore"
local function promoteDueJobs(q, base, now, blocked)
  local last = string.format("%d", (tonumber(now) + 1) * 4096 - 1)
  local due = redis.call("ZRANGEBYSCORE", q.delayed, "0", last, "LIMIT", "0", "1000")
  if #due == 0 then
    return
  end
  redis.call("ZREM", q.delayed, unpack(due))
  for _, id in ipairs(due) do
    local jobKey = base .. id
    local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
    if priority > 0 then
      redis.call("ZADD", q.prioritized, prioritizedScore(q.pc, priority), id)
    else
      redis.call("LPUSH", q.wait, id)
    end
    redis.call("XADD", q.events, "*", "event", "waiting", "jobId", id, "prev", "delayed")
    redis.call("HSET", jobKey, "delay", "0")
  end
  wakeWorkers(q.marker, blocked)
end

local function popReadyId(q)
  local id = redis.call("RPOPLPUSH", q.wait, q.active)
  if id and string.sub(id, 1, 2) == "0:" then
    -- a pre-v5 marker entry: drop it and look again
    redis.call("LREM", q.active, "1", id)
    id = redis.call("RPOPLPUSH", q.wait, q.active)
  end
  if id then
    return id
  end
  local best = redis.call("ZPOPMIN", q.prioritized)
  if best[1] then
    redis.call("LPUSH", q.active, best[1])
    return best[1]
  end
  redis.call("DEL", q.pc)
  return nil
end

local function takeNextJob(q, base, now, w, meta)
  meta = meta or redis.call("HMGET", q.meta, "paused", "concurrency", "max", "duration")
  local blocked = blockedBy(meta[1], meta[2], q.active)
  promoteDueJobs(q, base, now, blocked)

  local maxJobs = tonumber(meta[3]) or tonumber(w.limitMax)
  if maxJobs then
    local used = tonumber(redis.call("GET", q.limiter)) or 0
    if used >= maxJobs then
      local ttl = redis.call("PTTL", q.limiter)
      if ttl == 0 then
        redis.call("DEL", q.limiter)
      elseif ttl > 0 then
        return {0, 0, ttl, 0}
      end
    end
  end
  if blocked then
    return {0, 0, 0, 0}
  end

  local id = popReadyId(q)
  if not id then
    local due = nextDelayedDue(q.delayed)
    if due then
      return {0, 0, 0, due}
    end
    return nil
  end

  local jobKey = base .. id
  if maxJobs and redis.call("HEXISTS", jobKey, "defa") == 0 then
    if redis.call("INCR", q.limiter) == 1 then
      local window = tonumber(w.limitWindow) or tonumber(meta[4])
      if window then
        redis.call("PEXPIRE", q.limiter, math.floor(math.abs(window)))
      end
    end
  end
  if w.token ~= "0" then
    redis.call("SET", jobKey .. ":lock", w.token, "PX", w.lockMs)
  end
  redis.call("XADD", q.events, "*", "event", "active", "jobId", id, "prev", "waiting")
  if w.name ~= "" then
    redis.call("HSET", jobKey, "processedOn", now, "pb", w.name)
  else
    redis.call("HSET", jobKey, "processedOn", now)
  end
  redis.call("HINCRBY", jobKey, "ats", "1")
  redis.call("ZADD", q.marker, "0", "0")
  return {redis.call("HGETALL", jobKey), id, 0, 0}
end

--[[ replayFetched(base, outcome): the reply a repeated call returns when its first run had
  fetched a job, else nil. The outcome names that job: its id when all digits (Redis then
  stores an integer), else "j:<id>"; "0" means none was fetched. ]]
local function replayFetched(base, outcome)
  local id
  if string.sub(outcome, 1, 2) == "j:" then
    id = string.sub(outcome, 3)
  elseif outcome ~= "0" and string.match(outcome, "^%d+$") then
    id = outcome
  end
  if id then
    return {redis.call("HGETALL", base .. id), id, 0, 0, 1}
  end
  return nil
end

--[[ fetchedOutcome(reply): what to remember for a reply of takeNextJob. ]]
local function fetchedOutcome(reply)
  if type(reply) == "table" and type(reply[1]) == "table" then
    local id = reply[2]
    if string.match(id, "^[1-9]%d*$") and #id < 16 then
      return id
    end
    return "j:" .. id
  end
  return "0"
end
