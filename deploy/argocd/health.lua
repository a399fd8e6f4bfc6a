-- Argo CD resource health check for maestro.hyperfleet.io/MaestroApply and
-- MaestroApplySet (both write the same kstatus conditions; a set's Ready
-- reason is Progressing during a rollout, RolloutComplete once done, and
-- RolledBack with Stalled=True after a failed one).
--
-- Install it in the argocd-cm ConfigMap under the keys
--   resource.customizations.health.maestro.hyperfleet.io_MaestroApply
--   resource.customizations.health.maestro.hyperfleet.io_MaestroApplySet
-- (see argocd-cm.yaml beside this file). Argo CD runs it with the live object
-- in the global `obj` and reads the returned table's `status` and `message`.
--
-- It reads the kstatus conditions the operator writes:
--   Healthy      Ready=True, and the operator has observed the current spec
--   Progressing  not yet observed (no status, stale observedGeneration), or
--                Ready=False/Unknown with a reason that means work under way
--                (Pending, Progressing, WaitingForDeletion, Deleting)
--   Degraded     Stalled=True, or Ready=False/Unknown with any other reason
--                (the agent reports the work degraded, Maestro unreachable,
--                unknown consumer, refused by Maestro, the work claimed by
--                another MaestroApply, ...)
--   Suspended    spec.suspend is true
-- The message is the deciding condition's "reason: message".
--
-- Written for Lua 5.1 (Argo CD's gopher-lua) and only the base, string and
-- table libraries; the tests run it under Lua 5.1 and 5.4.

local hs = {}

-- Ready reasons that mean the operator or the agent is still working.
local progressing_reasons = {
  Pending = true,
  Progressing = true,
  Reconciling = true,
  WaitingForDeletion = true,
  Deleting = true,
}

local function find_condition(status, condition_type)
  if status == nil or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == condition_type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  elseif message ~= "" then
    return message
  elseif reason ~= "" then
    return reason
  end
  return fallback
end

local function check(o)
  local metadata = o.metadata or {}
  local spec = o.spec or {}
  local status = o.status
  local generation = metadata.generation
  local ready = find_condition(status, "Ready")

  if metadata.deletionTimestamp ~= nil then
    return "Progressing", describe(ready, "Being deleted")
  end
  if spec.suspend == true then
    local message = "spec.suspend is true: nothing is published"
    if ready ~= nil and ready.reason == "Suspended" then
      message = describe(ready, message)
    end
    return "Suspended", message
  end
  -- The CRD defaults status to {observedGeneration: 0} (so that kstatus
  -- sees an object no operator has reconciled as not yet observed).
  if status == nil or (status.observedGeneration == 0 and status.conditions == nil) then
    return "Progressing", "Waiting for the operator to reconcile"
  end
  local observed = status.observedGeneration
  if observed == nil or (generation ~= nil and observed < generation) then
    return "Progressing", "Waiting for the operator to observe generation " ..
      tostring(generation) .. " (observed " .. tostring(observed) .. ")"
  end

  local stalled = find_condition(status, "Stalled")
  if stalled ~= nil and stalled.status == "True" then
    return "Degraded", describe(stalled, "Stalled")
  end
  if ready == nil then
    return "Progressing", "Waiting for the Ready condition"
  end
  -- A condition written for an older generation says nothing about this one.
  if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
    return "Progressing", "Waiting for the Ready condition of generation " .. tostring(generation)
  end
  if ready.status == "True" then
    return "Healthy", describe(ready, "Ready")
  end
  if ready.reason == "Suspended" then
    return "Suspended", describe(ready, "Suspended")
  end
  if ready.reason == nil or ready.reason == "" or progressing_reasons[ready.reason] then
    return "Progressing", describe(ready, "Not ready yet")
  end
  return "Degraded", describe(ready, "Not ready")
end

hs.status, hs.message = check(obj)
return hs
