-- Argo CD health of Sluice's custom resources (group sluice.dev: EventStream, ConsumerGroup,
-- RetentionPolicy, Projection, Replay). The operator writes status.observedGeneration and kstatus
-- conditions (Ready, Reconciling, Stalled and kind-specific ones such as Paused, Succeeded, Failed).
--
--   no status, or observedGeneration behind metadata.generation   -> Progressing
--   Paused=True                                                   -> Suspended
--   Stalled=True, Failed=True, Succeeded=False (a failed Replay),
--   or Ready=False with a terminal reason or DatabaseUnreachable -> Degraded
--   Succeeded=True (Replay) or Ready=True                        -> Healthy
--   anything else                                                 -> Progressing
-- Lag is never Degraded on its own: a lagging group is still a working group. An unreachable database is
-- Degraded (nothing works until it is back), although the operator recovers by itself once it returns.
-- Argo CD runs this script with the resource in the global `obj` (Lua 5.1, gopher-lua).

local terminal_reasons = {
  InvalidSpec = true,
  ImmutableFieldChanged = true,
  PartitionsDecreased = true,
  StreamNotFound = true,
  BackoffLimitExceeded = true,
  JobFailed = true,
  UnsupportedSpec = true,
  Failed = true,
  DatabaseUnreachable = true,
}

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function describe(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition ~= nil and condition.reason ~= nil then
    return condition.reason
  end
  return fallback
end

local health = {}

if obj.status == nil then
  health.status = "Progressing"
  health.message = "Waiting for the Sluice operator to reconcile this resource"
  return health
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  health.status = "Progressing"
  health.message = "Waiting for the Sluice operator to observe generation " .. tostring(generation)
  return health
end

local conditions = obj.status.conditions
local paused = find_condition(conditions, "Paused")
local stalled = find_condition(conditions, "Stalled")
local failed = find_condition(conditions, "Failed")
local succeeded = find_condition(conditions, "Succeeded")
local ready = find_condition(conditions, "Ready")

if paused ~= nil and paused.status == "True" then
  health.status = "Suspended"
  health.message = describe(paused, "Paused")
  return health
end
if stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = describe(stalled, "Stalled")
  return health
end
if failed ~= nil and failed.status == "True" then
  health.status = "Degraded"
  health.message = describe(failed, "Failed")
  return health
end
if succeeded ~= nil and succeeded.status == "False" then
  health.status = "Degraded"
  health.message = describe(succeeded, "Failed")
  return health
end
if succeeded ~= nil and succeeded.status == "True" then
  health.status = "Healthy"
  health.message = describe(succeeded, "Succeeded")
  return health
end
if ready ~= nil and ready.status == "True" then
  health.status = "Healthy"
  health.message = describe(ready, "Ready")
  return health
end
if ready ~= nil and ready.status == "False" and terminal_reasons[ready.reason] then
  health.status = "Degraded"
  health.message = describe(ready, "Not ready")
  return health
end
health.status = "Progressing"
health.message = describe(ready, "Reconciling")
return health
