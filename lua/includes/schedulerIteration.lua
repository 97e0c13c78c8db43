--[[ Job scheduler iterations (BullMQ 6 job schedulers: "repeat" zset + "repeat:<id>" hash).

  millisText(n): an integral number of ms as text without exponent ("1795956474000").

  everyNext(prev, every, now, offset, startDate) -> next ms, offset
    The next slot of an "every" scheduler. Without a previous slot: startDate (not before now)
    if given, else the first slot after now shifted by offset when offset > 0, else now.
    With one: prev + every, unless that is already past; then the first offset-aligned slot
    after now. The returned offset is the given one, or (when 0) next's distance from the
    last multiple of every.

  putIteration(q, base, id, schedulerId, name, data, opts, now, delay, maxEvents) stores
    the iteration job hash (name, data, opts JSON with delay/jobId set, timestamp, delay,
    priority, rjk[, deid]), emits "added", then puts it in delayed (delay > 0; "delayed"
    event, delay marker) or prioritized / wait ("waiting" event, base marker if free).
    q: table of keys delayed, wait, prioritized, pc, marker, events, meta, active. ]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "delayedScore"

local function millisText(n)
  return string.format("%.0f", n)
end

local function everyNext(prev, every, now, offset, startDate)
  offset = tonumber(offset) or 0
  local nextMs
  if prev == nil then
    local start = tonumber(startDate)
    if start then
      nextMs = math.max(start, now)
    elseif offset > 0 then
      nextMs = math.floor(now / every) * every + offset
      if nextMs <= now then
        nextMs = nextMs + every
      end
    else
      nextMs = now
    end
  else
    nextMs = prev + every
    if nextMs < now then
      local slot = math.floor(now / every) * every + offset
      if slot > now then
        nextMs = slot
      else
        nextMs = slot + every
      end
    end
  end
  if offset == 0 then
    offset = nextMs - math.floor(nextMs / every) * every
  end
  return math.floor(nextMs), math.floor(offset)
end

local function putIteration(q, base, id, schedulerId, name, data, opts, now, delay, maxEvents)
  opts["delay"] = delay
  opts["jobId"] = id
  local priority = tonumber(opts["priority"]) or 0
  local extra = {"rjk", schedulerId}
  if type(opts["de"]) == "table" and opts["de"]["id"] then
    extra[3] = "deid"
    extra[4] = opts["de"]["id"]
  end
  local jobKey = base .. id
  redis.call("HSET", jobKey, "name", name, "data", data, "opts", cjson.encode(opts),
    "timestamp", now, "delay", delay, "priority", priority, unpack(extra))
  redis.call("XADD", q.events, "*", "event", "added", "jobId", id, "name", name)
  if delay ~= 0 then
    local score, due = delayedScore(q.delayed, now, delay)
    redis.call("ZADD", q.delayed, score, id)
    redis.call("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "delayed", "jobId", id,
      "delay", due)
    markDelayed(q.marker, q.delayed)
    return "delayed"
  end
  local blocked = queueBlocked(q.meta, q.active)
  if priority > 0 then
    enqueuePrioritized(q.prioritized, q.pc, q.marker, id, priority, blocked)
  else
    enqueueWaiting(q.wait, q.marker, id, opts["lifo"] and true or false, blocked)
  end
  redis.call("XADD", q.events, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", id)
  return "waiting"
end
