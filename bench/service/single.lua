-- wrk: one event per POST, a random workspace and page each time (keep-alive connections).
local token = os.getenv("BENCH_TOKEN")
local n = 0
request = function()
  n = n + 1
  local s = math.random(0, 99)
  local body = string.format('{"paths":["/ws/%d/page-%d.html"]}', s, n % 50)
  return wrk.format("POST", "/v1/scopes/ws:" .. s .. "/invalidations",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
