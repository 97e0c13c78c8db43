--[[ landNewJob(at, id, jobKey, timestamp, delay, priority, lifo, parentKey)
    -> "delayed" or "waiting"
  Where a job just stored goes, with its event: delay > 0 -> the delayed set (score from
  delayedScore, "delayed" event with the due time); priority > 0 -> prioritized; else wait
  (lifo: the tail, processed next), then "waiting". Then, with a parent, into the parent's
  dependencies (addDependency). `at` holds the keys of the job's queue (delayed,
  prioritized, pc, wait, events) and its events cap. The caller sets the markers, once per
  queue and call (wakeWorkers / markDelayed), from what this returns. ]]
-- @include "enqueue"
-- @include "delayedScore"
local function addDependency(parentKey, jobKey)
  if parentKey ~= "" then
    redis.call("SADD", parentKey .. ":dependencies", jobKey)
  end
end

local function landNewJob(at, id, jobKey, timestamp, delay, priority, lifo, parentKey)
  local landed = "delayed"
  if delay > 0 then
    local score, due = delayedScore(at.delayed, timestamp, delay)
    redis.call("ZADD", at.delayed, score, id)
    redis.call("XADD", at.events, "MAXLEN", "~", at.cap, "*", "event", "delayed", "jobId", id,
      "delay", due)
  else
    landed = "waiting"
    if priority > 0 then
      redis.call("ZADD", at.prioritized, prioritizedScore(at.pc, priority), id)
    elseif lifo then
      redis.call("RPUSH", at.wait, id)
    else
      redis.call("LPUSH", at.wait, id)
    end
    redis.call("XADD", at.events, "MAXLEN", "~", at.cap, "*", "event", "waiting", "jobId", id)
  end
  addDependency(parentKey, jobKey)
  return landed
end
