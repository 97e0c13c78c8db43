--[[ Exactly-once transitions across client retries.
  A caller that lost a reply calls again with the same token (same outcome slot): the first
  successful run stores its result there, and a repeat returns it untouched. The slot lives
  only as long as the caller's retries can reach (ttl ms, from Connection.outcome_ttl_ms),
  and a script whose outcome the job's own state proves stores none (see finishJob).
  The slot named "<key>#<field>" (what the client sends: up to 128 calls of one process share
  a key, see keys.OP_SEGMENT) is a field of a small hash whose expiry every write pushes to
  ttl from now, so each field outlives its own write by at least ttl; a name without
  "#<hex>" is a key of its own (SET with PX).
  recallOutcome(opKey) -> the stored string or false.
  rememberOutcome(opKey, value, ttl) stores a string; it always expires. ]]
local function outcomeSlot(opKey)
  return string.match(opKey, "^(.*)#(%x+)$")
end

local function recallOutcome(opKey)
  local key, field = outcomeSlot(opKey)
  if key then
    return redis.call("HGET", key, field)
  end
  return redis.call("GET", opKey)
end

local function rememberOutcome(opKey, value, ttl)
  local key, field = outcomeSlot(opKey)
  if key then
    redis.call("HSET", key, field, value)
    redis.call("PEXPIRE", key, ttl)
  else
    redis.call("SET", opKey, value, "PX", ttl)
  end
end
