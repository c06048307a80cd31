-- Argo CD health of a kascade.io/Run (docs/argocd.md). Uses only Lua's base and table
-- libraries: Argo CD runs custom health checks without string, math, io or os.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the run"
  return hs
end

local phase = status.phase
local health = {
  SCHEDULED = "Progressing",
  QUEUED = "Progressing",
  RUNNING = "Progressing",
  SUCCEEDING = "Progressing",
  FAILING = "Progressing",
  ABORTING = "Progressing",
  SUCCEEDED = "Healthy",
  FAILED = "Degraded",
  TIMED_OUT = "Degraded",
  -- A run that was aborted did not do what it was created for, and it never resumes:
  -- Degraded, not Suspended (see "ABORTED is Degraded" in docs/argocd.md).
  ABORTED = "Degraded",
}
if health[phase] == nil then
  hs.status = "Unknown"
  hs.message = "Unknown run phase " .. tostring(phase) .. "; update the kascade health check"
  return hs
end

-- "RUNNING (3/10 tasks done, 1 failed): task `load` failed"
local facts = {}
local waiting = phase == "SCHEDULED" or phase == "QUEUED"
if not waiting and status.progress ~= nil and status.totalTasks ~= nil and status.totalTasks > 0 then
  table.insert(facts, status.progress .. " tasks done")
  local counts = status.taskCounts or {}
  local failed = (counts.FAILED or 0) + (counts.TIMED_OUT or 0)
  if failed > 0 then
    table.insert(facts, tostring(failed) .. " failed")
  end
end
if status.duration ~= nil then
  table.insert(facts, "took " .. status.duration)
end
local message = phase
if #facts > 0 then
  message = message .. " (" .. table.concat(facts, ", ") .. ")"
end
local detail = status.message or status.reason
if detail ~= nil and detail ~= "" then
  message = message .. ": " .. detail
end

hs.status = health[phase]
hs.message = message
return hs
