-- Runs an Argo CD health script against test cases.
--
--   lua health-runner.lua HEALTH_LUA CASES_LUA
--
-- CASES_LUA returns a list of {name=, obj=, status=, message=} (made by
-- yaml2lua.py). The health script runs as Argo CD runs it: a fresh chunk
-- per object, `obj` a global, and only the base, string, table and math
-- libraries in reach (no io, os, require or debug), so a script that would
-- fail in Argo CD's sandbox fails here. Prints one line per case and the
-- summary line "N passed, N failed"; exits 1 on any failure.

local health_path, cases_path = arg[1], arg[2]
if health_path == nil or cases_path == nil then
  io.stderr:write("usage: lua health-runner.lua HEALTH_LUA CASES_LUA\n")
  os.exit(2)
end

local function load_chunk(path, env)
  if setfenv ~= nil then -- Lua 5.1
    local chunk, err = loadfile(path)
    if chunk == nil then
      return nil, err
    end
    setfenv(chunk, env)
    return chunk
  end
  return loadfile(path, "t", env)
end

local function sandbox(obj)
  return {
    obj = obj,
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack or table.unpack,
    string = string, table = table, math = math,
  }
end

local cases = assert(dofile(cases_path), "no cases")
local passed, failed = 0, 0
for _, case in ipairs(cases) do
  local chunk, err = load_chunk(health_path, sandbox(case.obj))
  local ok, result
  if chunk == nil then
    ok, result = false, err
  else
    ok, result = pcall(chunk)
  end
  if not ok then
    failed = failed + 1
    print("FAIL " .. case.name .. ": the script failed: " .. tostring(result))
  elseif type(result) ~= "table" then
    failed = failed + 1
    print("FAIL " .. case.name .. ": the script returned " .. type(result) .. ", not a table")
  elseif result.status ~= case.status or (result.message or "") ~= case.message then
    failed = failed + 1
    print("FAIL " .. case.name)
    print("  want: " .. case.status .. " | " .. case.message)
    print("  got:  " .. tostring(result.status) .. " | " .. tostring(result.message))
  else
    passed = passed + 1
    print("ok   " .. case.name .. " -> " .. result.status)
  end
end
print(string.format("%d passed, %d failed", passed, failed))
if failed > 0 then
  os.exit(1)
end
