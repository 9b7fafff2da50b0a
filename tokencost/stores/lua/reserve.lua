-- Hold an amount on every checked counter if all still fit, atomically.
-- KEYS: counters, held, reservations, expiries
-- ARGV: id, units, tokens, ttl seconds, then (key, limit units or '', limit tokens or '') per check
-- Returns 0 when held, else the 1-based index of the first check that does not fit.
local counters, held, res, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, units, tokens = ARGV[1], ARGV[2], ARGV[3]
local t = now()
purge(res, exp, held, t)
drop_reservation(res, exp, held, id)  -- a repeated id replaces its hold
local keys = {}
local n = 0
for i = 5, #ARGV, 3 do
  n = n + 1
  local key, limit_units, limit_tokens = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if limit_units ~= '' then
    local spent = amount(redis.call('HGET', counters, 'u:' .. key))
    local holding = amount(redis.call('HGET', held, 'u:' .. key))
    if cmp(add(add(spent, holding), units), limit_units) > 0 then return n end
  end
  if limit_tokens ~= '' then
    local used = amount(redis.call('HGET', counters, 't:' .. key))
    local holding = amount(redis.call('HGET', held, 't:' .. key))
    if cmp(add(add(used, holding), tokens), limit_tokens) > 0 then return n end
  end
  keys[n] = key
end
redis.call('HSET', res, id, cjson.encode({k = keys, u = units, t = tokens}))
redis.call('ZADD', exp, string.format('%.6f', t + tonumber(ARGV[4])), id)
for _, key in ipairs(keys) do
  if units ~= '0' then redis.call('HINCRBY', held, 'u:' .. key, units) end
  if tokens ~= '0' then redis.call('HINCRBY', held, 't:' .. key, tokens) end
end
return 0
