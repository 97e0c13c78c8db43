--[[ Exactly-once transitions across client retries.
  A caller that lost a reply calls again with the same token (same outcome key): the first
  successful run stores its result there, and a repeat returns it untouched. The key lives
  only as long as the caller's retries can reach (ttl ms, from Connection.outcome_ttl_ms),
  and a script whose outcome the job's own state proves stores none (see finishJob).
  recallOutcome(opKey) -> the stored string or false.
  rememberOutcome(opKey, value, ttl) stores a string (one SET with PX: it always expires). ]]
local function recallOutcome(opKey)
  return redis.call("GET", opKey)
end

local function rememberOutcome(opKey, value, ttl)
  redis.call("SET", opKey, value, "PX", ttl)
end
