-- Hold an amount on every checked counter if all still fit, atomically.
-- KEYS: counters, held, reservations, expiries
-- ARGV: id, units, tokens, ttl seconds, the time (or '' for the server's), units below a micro-dollar, whole
--       micro-dollars, then (key, limit units or '', limit tokens or '') per check
-- Several checks of one key hold the amount on it once (each limit applies).
-- Returns 0 when held, else the 1-based index of the first check that does not fit.
local counters, held, res, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, units, tokens = ARGV[1], ARGV[2], ARGV[3]
local rest, micro = ARGV[6], ARGV[7]
local t = clock(ARGV[5])
purge(res, exp, held, t)
drop_reservation(res, exp, held, id)  -- a repeated id replaces its hold
local keys, seen = {}, {}
local n = 0
for i = 8, #ARGV, 3 do
  n = n + 1
  local key, limit_units, limit_tokens = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if limit_units ~= '' then
    if cmp(add(add(money(counters, key), money(held, key)), units), limit_units) > 0 then return n end
  end
  if limit_tokens ~= '' then
    local used = amount(redis.call('HGET', counters, 't:' .. key))
    local holding = amount(redis.call('HGET', held, 't:' .. key))
    if cmp(add(add(used, holding), tokens), limit_tokens) > 0 then return n end
  end
  if not seen[key] then
    seen[key] = true
    keys[#keys + 1] = key
  end
end
local expires = t + tonumber(ARGV[4])
redis.call('HSET', res, id, cjson.encode({k = keys, u = rest, m = micro, t = tokens,
  c = string.format('%.6f', t), e = string.format('%.6f', expires)}))
redis.call('ZADD', exp, string.format('%.6f', expires), id)
for _, key in ipairs(keys) do
  if rest ~= '0' then redis.call('HINCRBY', held, 'u:' .. key, rest) end
  if micro ~= '0' then redis.call('HINCRBY', held, 'm:' .. key, micro) end
  if tokens ~= '0' then redis.call('HINCRBY', held, 't:' .. key, tokens) end
end
return 0
