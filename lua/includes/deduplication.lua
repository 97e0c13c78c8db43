--[[ Job deduplication (BullMQ 6.7 "deduplication" option, stored as opts.de + field deid).

  The key <base>de:<dedupId> holds the id of the job that owns the dedup id (optionally with
  a PX ttl); <base>dn:<dedupId> is a hash parking the latest job added while the owner was
  active with keepLastIfActive (fields name, data, opts, jid [, pk, pd, pdk, rjk]).
  A spec is the decoded opts.de table: id, ttl, extend, replace, reschedule,
  keepLastIfActive.

  dedupOnAdd(spec, newId, job, ctx) -> ownerId or nil, rescheduled
    job: {name, data, opts (JSON text), timestamp, delay}
    ctx: {base, events, delayed, active, cap}
    nil: the add goes on (the key now names newId, or a replaced delayed owner is gone);
    an id: the add stops and answers with that existing owner. rescheduled = true when a
    delayed owner was re-timed (the caller refreshes the delay marker).
  releaseDedupOnFinish(base, dedupId, jobId): the key goes when it has expired (PTTL 0) or
    has no ttl and still names the finishing job.
  requeueParkedJob(q, base, dedupId, now): turn a parked dn hash into a real job (id jid,
    or the counter), own the key with it, enqueue it, drop the dn hash.
]]
-- @include "pausedOrMaxed"
-- @include "enqueue"
-- @include "eventsCap"
-- @include "delayedScore"

-- The key now names id: keepLastIfActive keys never expire while they wait for a finish;
-- otherwise a positive ttl bounds the dedup window. nx = only when no key exists.
local function claimDedupKey(dedupKey, id, spec, nx)
  local ttl = tonumber(spec["ttl"])
  local cmd = {"SET", dedupKey, id}
  if not spec["keepLastIfActive"] and ttl and ttl > 0 then
    cmd[#cmd + 1] = "PX"
    cmd[#cmd + 1] = ttl
  end
  if nx then
    cmd[#cmd + 1] = "NX"
  end
  return redis.call(unpack(cmd))
end

local function dedupEvent(ctx, jobId, dedupId, otherId)
  redis.call("XADD", ctx.events, "MAXLEN", "~", ctx.cap, "*", "event", "deduplicated",
    "jobId", jobId, "deduplicationId", dedupId, "deduplicatedJobId", otherId)
end

-- A key without expiry whose owner hash has vanished is stale (6.7): start a new window
-- with the incoming job, forgetting anything parked for the vanished owner.
local function takeOverStaleKey(dedupKey, spec, ctx, ownerId, newId)
  if redis.call("PTTL", dedupKey) ~= -1 or redis.call("EXISTS", ctx.base .. ownerId) == 1 then
    return false
  end
  redis.call("DEL", dedupKey, ctx.base .. "dn:" .. spec["id"])
  claimDedupKey(dedupKey, newId, spec, false)
  return true
end

local function isActive(activeKey, id)
  local found = redis.pcall("LPOS", activeKey, id)
  if type(found) == "table" and found.err then
    for _, member in ipairs(redis.call("LRANGE", activeKey, 0, -1)) do
      if member == id then
        return true
      end
    end
    return false
  end
  return found ~= false and found ~= nil
end

-- keepLastIfActive with an active owner: park the newcomer (the last one wins) to be
-- created when the owner finishes; the key loses its expiry meanwhile.
local function parkBehindActiveOwner(dedupKey, spec, ctx, ownerId, newId, job)
  if not spec["keepLastIfActive"] or not isActive(ctx.active, ownerId) then
    return false
  end
  local parked = ctx.base .. "dn:" .. spec["id"]
  redis.call("DEL", parked)
  redis.call("HSET", parked, "name", job.name, "data", job.data, "opts", job.opts, "jid", newId)
  redis.call("PERSIST", dedupKey)
  dedupEvent(ctx, ownerId, spec["id"], newId)
  return true
end

-- An existing owner was met: stale -> nil (go on); parked -> owner; else the mode's
-- bookkeeping (extend re-arms the window) and the "deduplicated" event -> owner.
local function meetOwner(dedupKey, spec, ctx, ownerId, newId, job, extend)
  if takeOverStaleKey(dedupKey, spec, ctx, ownerId, newId) then
    return nil
  end
  if parkBehindActiveOwner(dedupKey, spec, ctx, ownerId, newId, job) then
    return ownerId
  end
  if extend then
    claimDedupKey(dedupKey, ownerId, spec, false)
  end
  dedupEvent(ctx, ownerId, spec["id"], newId)
  return ownerId
end

local function replaceMode(dedupKey, spec, ctx, newId, job)
  local ownerId = redis.call("GET", dedupKey)
  if not ownerId then
    claimDedupKey(dedupKey, newId, spec, false)
    return nil
  end
  if redis.call("ZREM", ctx.delayed, ownerId) == 1 then
    local ownerKey = ctx.base .. ownerId
    redis.call("DEL", ownerKey, ownerKey .. ":logs", ownerKey .. ":dependencies",
      ownerKey .. ":processed", ownerKey .. ":failed", ownerKey .. ":unsuccessful")
    redis.call("XADD", ctx.events, "*", "event", "removed", "jobId", ownerId, "prev", "delayed")
    dedupEvent(ctx, newId, spec["id"], ownerId)
    redis.call("DEL", ctx.base .. "dn:" .. spec["id"])
    local ttl = tonumber(spec["ttl"])
    if not spec["keepLastIfActive"] and not spec["extend"] and ttl and ttl > 0 then
      redis.call("SET", dedupKey, newId, "KEEPTTL")
    else
      claimDedupKey(dedupKey, newId, spec, false)
    end
    return nil
  end
  if takeOverStaleKey(dedupKey, spec, ctx, ownerId, newId) then
    return nil
  end
  parkBehindActiveOwner(dedupKey, spec, ctx, ownerId, newId, job)
  return ownerId
end

local function keepMode(dedupKey, spec, ctx, newId, job)
  local ttl = tonumber(spec["ttl"])
  if ttl and ttl > 0 and spec["extend"] then
    local ownerId = redis.call("GET", dedupKey)
    if not ownerId then
      claimDedupKey(dedupKey, newId, spec, false)
      return nil
    end
    return meetOwner(dedupKey, spec, ctx, ownerId, newId, job, true)
  end
  if claimDedupKey(dedupKey, newId, spec, true) then
    return nil
  end
  return meetOwner(dedupKey, spec, ctx, redis.call("GET", dedupKey), newId, job, false)
end

-- 6.7 "reschedule": a delayed owner is re-timed to the newcomer's timestamp + delay.
local function rescheduleOwner(ctx, ownerId, job)
  if not redis.call("ZSCORE", ctx.delayed, ownerId) then
    return false
  end
  redis.call("HSET", ctx.base .. ownerId, "delay", job.delay)
  local score, due = delayedScore(ctx.delayed, job.timestamp, job.delay)
  redis.call("ZADD", ctx.delayed, score, ownerId)
  redis.call("XADD", ctx.events, "MAXLEN", "~", ctx.cap, "*", "event", "delayed",
    "jobId", ownerId, "delay", due)
  return true
end

local function dedupOnAdd(spec, newId, job, ctx)
  local dedupKey = ctx.base .. "de:" .. spec["id"]
  if spec["replace"] then
    return replaceMode(dedupKey, spec, ctx, newId, job), false
  end
  local ownerId = keepMode(dedupKey, spec, ctx, newId, job)
  local rescheduled = false
  if ownerId and spec["reschedule"] then
    rescheduled = rescheduleOwner(ctx, ownerId, job)
  end
  return ownerId, rescheduled
end

local function releaseDedupOnFinish(base, dedupId, jobId)
  local dedupKey = base .. "de:" .. dedupId
  local ttl = redis.call("PTTL", dedupKey)
  if ttl == 0 or (ttl == -1 and redis.call("GET", dedupKey) == jobId) then
    redis.call("DEL", dedupKey)
  end
end

local function requeueParkedJob(q, base, dedupId, now)
  local parked = base .. "dn:" .. dedupId
  if redis.call("EXISTS", parked) == 0 then
    return
  end
  local p = redis.call("HMGET", parked, "name", "data", "opts", "jid", "pk", "pd", "pdk", "rjk")
  local counter = redis.call("INCR", base .. "id")
  local id = p[4] or tostring(counter)
  local jobKey = base .. id
  local opts = cjson.decode(p[3])
  local spec = type(opts["de"]) == "table" and opts["de"] or {}
  claimDedupKey(base .. "de:" .. dedupId, id, spec, false)

  local delay = tonumber(opts["delay"]) or 0
  local priority = tonumber(opts["priority"]) or 0
  local fields = {"name", p[1], "data", p[2], "opts", p[3], "timestamp", now,
    "delay", delay, "priority", priority}
  if p[5] then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = p[5]
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = p[6]
  end
  if p[8] then
    fields[#fields + 1] = "rjk"
    fields[#fields + 1] = p[8]
  end
  if spec["id"] then
    fields[#fields + 1] = "deid"
    fields[#fields + 1] = spec["id"]
  end
  redis.call("HSET", jobKey, unpack(fields))
  redis.call("XADD", q.events, "*", "event", "added", "jobId", id, "name", p[1])

  local cap = eventsCap(q.meta)
  if delay ~= 0 then
    local score, due = delayedScore(q.delayed, now, delay)
    redis.call("ZADD", q.delayed, score, id)
    redis.call("XADD", q.events, "MAXLEN", "~", cap, "*", "event", "delayed", "jobId", id,
      "delay", due)
    markDelayed(q.marker, q.delayed)
  else
    local blocked = queueBlocked(q.meta, q.active)
    if priority > 0 then
      enqueuePrioritized(q.prioritized, q.pc, q.marker, id, priority, blocked)
    else
      enqueueWaiting(q.wait, q.marker, id, opts["lifo"] and opts["lifo"] ~= cjson.null, blocked)
    end
    redis.call("XADD", q.events, "MAXLEN", "~", cap, "*", "event", "waiting", "jobId", id)
  end
  if p[7] then
    redis.call("SADD", p[7], jobKey)
  end
  redis.call("DEL", parked)
end
