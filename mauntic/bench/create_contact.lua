-- wrk script: POST /api/v1/contacts with a unique email per request.
-- Usage: MAUNTIC_KEY=mk_... wrk -t2 -c8 -d15s --latency -s mauntic/bench/create_contact.lua http://127.0.0.1:8080
local key = os.getenv("MAUNTIC_KEY")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"email":"wrk-%d-%d-%d@example.org","first_name":"Load","fields":{"plan":"pro","score":%d},"tags":["bench"]}',
    thread_id, counter, math.random(1, 1000000000), counter % 100)
  return wrk.format("POST", "/api/v1/contacts", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
