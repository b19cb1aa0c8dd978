-- wrk: 1,000 events per POST to the batch endpoint (100 workspaces, 10 pages each), built once.
local token = os.getenv("BENCH_TOKEN")
local parts = {}
for i = 0, 999 do
  local s = i % 100
  parts[#parts + 1] = string.format('{"scope":"ws:%d","paths":["/ws/%d/page-%d.html"]}', s, s, i % 50)
end
wrk.method = "POST"
wrk.path = "/v1/invalidations:batch"
wrk.body = '{"events":[' .. table.concat(parts, ",") .. ']}'
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
