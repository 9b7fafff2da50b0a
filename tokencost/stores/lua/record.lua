-- Append a batch of events of one ledger, charge their counters, add them to the totals and group sums, and
-- drop their reservations, in one step.
-- KEYS: totals, counters, held, reservations, expiries, events stream, unpriced, prices, writers,
--       then one group-sums hash per dimension (in the order of redis.py's DIMENSIONS)
-- ARGV: stream max length, writer id, batch sequence number, header JSON, then one event JSON per event
-- header: d = reservations to drop, t = the 9 totals increments, c = {key, units, tokens} counter charges,
--         a = {dimension index, group, 9 increments}, u = {ARGV index, call id} of unpriced events,
--         p = {price key, price JSON}. Every amount is decimal text.
-- A batch already applied (a retry after a lost reply) is not applied again: the writer's last sequence
-- number is kept in the writers hash. Returns the units and tokens of each charged counter, as decimal text.
local totals, counters, held, res, exp, stream, unpriced, prices, writers =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local maxlen, writer, seq = ARGV[1], ARGV[2], tonumber(ARGV[3])
local h = cjson.decode(ARGV[4])
local FIELDS = {'requests', 'cost', 'unpriced', 'saved', 'input', 'cache_read', 'cache_write', 'output', 'reasoning',
  'cost_m', 'saved_m'}

local last = tonumber(redis.call('HGET', writers, writer) or '0')
if seq > last then
  redis.call('HSET', writers, writer, seq)
  for _, id in ipairs(h.d) do drop_reservation(res, exp, held, id) end
  for _, p in ipairs(h.p) do redis.call('HSETNX', prices, p[1], p[2]) end
  local ids = {}
  for i = 5, #ARGV do
    ids[i] = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', ARGV[i])
  end
  for _, u in ipairs(h.u) do redis.call('HSET', unpriced, u[2], ids[u[1]] .. ' ' .. ARGV[u[1]]) end
  for i, f in ipairs(FIELDS) do
    local v = h.t[i]
    if v and v ~= '0' then redis.call('HINCRBY', totals, f, v) end
  end
  for _, a in ipairs(h.a) do
    local key = KEYS[9 + a[1]]
    for i = 1, #FIELDS do
      local v = a[3][i]
      if v and v ~= '0' then redis.call('HINCRBY', key, (i - 1) .. ':' .. a[2], v) end
    end
  end
  for _, c in ipairs(h.c) do
    if c[2] ~= '0' then redis.call('HINCRBY', counters, 'u:' .. c[1], c[2]) end
    if c[3] ~= '0' then redis.call('HINCRBY', counters, 't:' .. c[1], c[3]) end
    if c[4] and c[4] ~= '0' then redis.call('HINCRBY', counters, 'm:' .. c[1], c[4]) end
  end
end
local out = {}
for _, c in ipairs(h.c) do
  out[#out + 1] = money(counters, c[1])
  out[#out + 1] = amount(redis.call('HGET', counters, 't:' .. c[1]))
end
return out
