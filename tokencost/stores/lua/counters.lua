-- Read counters after dropping expired reservations.
-- KEYS: counters, held, reservations, expiries; ARGV: the time (or '' for the server's), then counter keys
-- Returns units, tokens and held units of each key, as decimal text.
local counters, held = KEYS[1], KEYS[2]
purge(KEYS[3], KEYS[4], held, clock(ARGV[1]))
local out = {}
for i = 2, #ARGV do
  local key = ARGV[i]
  out[#out + 1] = money(counters, key)
  out[#out + 1] = amount(redis.call('HGET', counters, 't:' .. key))
  out[#out + 1] = money(held, key)
end
return out
