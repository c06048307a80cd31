-- Argo CD health of a kascade.io/Flow (docs/argocd.md). Uses only Lua's base and table
-- libraries: Argo CD runs custom health checks without string, math, io or os.
local hs = {}
local status = obj.status or {}
local valid = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Valid" then
    valid = condition
  end
end
if valid == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the Flow"
  return hs
end

-- The Valid condition describes the generation the operator last checked; after an edit
-- it is stale until the operator has checked the new spec.
local generation = obj.metadata.generation
local checked = valid.observedGeneration or status.observedGeneration
if generation ~= nil and checked ~= nil and checked < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate generation " .. tostring(generation)
  return hs
end
if valid.status == "False" then
  hs.status = "Degraded"
  hs.message = valid.message or valid.reason or "The Flow is not valid"
  return hs
end
if valid.status ~= "True" then
  hs.status = "Progressing"
  hs.message = valid.message or "Waiting for the operator to validate the Flow"
  return hs
end

-- Valid. Runs are reported, not judged: a failed run is an alert (kascade_runs_total),
-- not a Flow that failed to deploy (see "A failed run leaves the Flow Healthy" in the doc).
local facts = {}
if valid.message ~= nil and valid.message ~= "" then
  table.insert(facts, valid.message)
end
local schedule = (obj.spec or {}).schedule
local suspended = schedule ~= nil and schedule.suspend == true
if schedule == nil then
  table.insert(facts, "runs on demand")
elseif not suspended and status.nextScheduleTime ~= nil then
  table.insert(facts, "next run " .. status.nextScheduleTime)
end
local active = #(status.activeRuns or {})
if active == 1 then
  table.insert(facts, "1 active run")
elseif active > 1 then
  table.insert(facts, tostring(active) .. " active runs")
end
local last = status.lastRun
if last ~= nil and last.name ~= nil then
  table.insert(facts, "last run " .. last.name .. " " .. (last.phase or "(not started)"))
end

-- A suspended schedule is the declared state, applied: Healthy, with the pause first in
-- the message (see "A suspended Flow is Healthy" in docs/argocd.md for why not Suspended).
if suspended then
  table.insert(facts, 1, "Schedule suspended")
end
hs.status = "Healthy"
hs.message = table.concat(facts, "; ")
return hs
