--[[ getJobsInStates: ids and job hashes of a page of each requested state, atomically.

  KEYS[1] base key <prefix>:<queue>:
  ARGV[1] start  ARGV[2] end (inclusive, -1 = to the end)
  ARGV[3] "1" ascending (oldest first), "0" descending (newest first)
  ARGV[4...] structure names: wait, paused, active (lists) or a zset name

  Lists: the tail holds the oldest entry, so ascending pages are read from the tail.
  Ids whose hash is gone (a deprecated "0:" marker, a job removed meanwhile) are skipped.
  Returns one list per structure of {id, {field, value, ...}} pairs.
]]
local base = KEYS[1]
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local ascending = ARGV[3] == "1"

local function listPage(key)
  if not ascending then
    return redis.call("LRANGE", key, first, last)
  end
  local length = redis.call("LLEN", key)
  local from = first < 0 and length + first or first
  local to = last < 0 and length + last or math.min(last, length - 1)
  if from < 0 then
    from = 0
  end
  if from > to then
    return {}
  end
  local page = redis.call("LRANGE", key, length - 1 - to, length - 1 - from)
  local reversed = {}
  for i = #page, 1, -1 do
    reversed[#reversed + 1] = page[i]
  end
  return reversed
end

local results = {}
for i = 4, #ARGV do
  local name = ARGV[i]
  local key = base .. name
  local ids
  if name == "wait" or name == "paused" or name == "active" then
    ids = listPage(key)
  elseif ascending then
    ids = redis.call("ZRANGE", key, first, last)
  else
    ids = redis.call("ZREVRANGE", key, first, last)
  end
  local entries = {}
  for _, id in ipairs(ids) do
    local fields = redis.call("HGETALL", base .. id)
    if #fields > 0 then
      entries[#entries + 1] = {id, fields}
    end
  end
  results[#results + 1] = entries
end
return results
