-- Price an event recorded unpriced, once: the first caller to take it off the unpriced hash applies the
-- increments; later callers change nothing.
-- KEYS: totals, counters, unpriced, repriced, prices, then one group-sums hash per dimension
-- ARGV: call id, stream entry id, patch JSON, header JSON (t, a, c, p as in record.lua)
-- Returns 1 when applied, 0 when the event is unknown or already priced.
local totals, counters, unpriced, repriced, prices = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FIELDS = {'requests', 'cost', 'unpriced', 'saved', 'input', 'cache_read', 'cache_write', 'output', 'reasoning',
  'cost_m', 'saved_m'}
local entry = redis.call('HGET', unpriced, ARGV[1])
if not entry or entry:sub(1, #ARGV[2] + 1) ~= ARGV[2] .. ' ' then return 0 end
redis.call('HDEL', unpriced, ARGV[1])
redis.call('HSET', repriced, ARGV[2], ARGV[3])
local h = cjson.decode(ARGV[4])
for _, p in ipairs(h.p) do redis.call('HSETNX', prices, p[1], p[2]) end
for i, f in ipairs(FIELDS) do
  local v = h.t[i]
  if v and v ~= '0' then redis.call('HINCRBY', totals, f, v) end
end
for _, a in ipairs(h.a) do
  local key = KEYS[5 + a[1]]
  for i = 1, #FIELDS do
    local v = a[3][i]
    if v and v ~= '0' then redis.call('HINCRBY', key, (i - 1) .. ':' .. a[2], v) end
  end
end
for _, c in ipairs(h.c) do
  if c[2] ~= '0' then redis.call('HINCRBY', counters, 'u:' .. c[1], c[2]) end
  if c[4] and c[4] ~= '0' then redis.call('HINCRBY', counters, 'm:' .. c[1], c[4]) end
end
return 1
