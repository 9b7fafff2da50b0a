-- Helpers prepended to every tokencost script (see tokencost/stores/redis.py).
-- Money and token counts travel as decimal text and are changed only with HINCRBY: Lua numbers are doubles,
-- exact only below 2^53 (about $9,007 in pico-dollars). Sums that a check compares are added as text.
-- Money sums are kept in two 64-bit fields (HINCRBY's range), whole micro-dollars ('m:' counters, '<x>_m' totals)
-- and the pico-dollars below them ('u:' counters, '<x>' totals): a sum is m * 10^6 + u, up to ~$9.2 * 10^12.

-- Add two non-negative integers given as decimal text.
local function add(a, b)
  local out, carry = {}, 0
  local i, j = #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local d = carry
    if i > 0 then d = d + a:byte(i) - 48; i = i - 1 end
    if j > 0 then d = d + b:byte(j) - 48; j = j - 1 end
    if d >= 10 then carry = 1; d = d - 10 else carry = 0 end
    out[#out + 1] = string.char(d + 48)
  end
  local s = string.reverse(table.concat(out)):gsub('^0+', '')
  if s == '' then return '0' end
  return s
end

-- Compare two non-negative integers given as decimal text without leading zeros: -1, 0 or 1.
local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

-- A stored amount as non-negative decimal text (a missing field is 0).
local function amount(value)
  if not value or value == '' or value:sub(1, 1) == '-' then return '0' end
  return value
end

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- The time a script runs at: the caller's clock when it passes one (a store built with clock=), else the server's.
local function clock(t)
  if t and t ~= '' then return tonumber(t) end
  return now()
end

-- A money sum kept in two fields of ``hash`` ('m:' .. key and 'u:' .. key), as decimal text.
local function money(hash, key)
  local m = amount(redis.call('HGET', hash, 'm:' .. key))
  local u = amount(redis.call('HGET', hash, 'u:' .. key))
  if m == '0' then return u end
  return add(m .. '000000', u)
end

-- Drop one reservation: give back what it held on each of its counters.
local function drop_reservation(res_key, exp_key, held_key, id)
  local raw = redis.call('HGET', res_key, id)
  if not raw then return end
  local r = cjson.decode(raw)
  redis.call('HDEL', res_key, id)
  redis.call('ZREM', exp_key, id)
  local m = r.m or '0'
  for _, key in ipairs(r.k) do
    if r.u ~= '0' and redis.call('HINCRBY', held_key, 'u:' .. key, '-' .. r.u) == 0 then
      redis.call('HDEL', held_key, 'u:' .. key)
    end
    if m ~= '0' and redis.call('HINCRBY', held_key, 'm:' .. key, '-' .. m) == 0 then
      redis.call('HDEL', held_key, 'm:' .. key)
    end
    if r.t ~= '0' and redis.call('HINCRBY', held_key, 't:' .. key, '-' .. r.t) == 0 then
      redis.call('HDEL', held_key, 't:' .. key)
    end
  end
end

-- Drop the reservations whose time ran out (memory's rule: expired when expiry < now).
local function purge(res_key, exp_key, held_key, t)
  local expired = redis.call('ZRANGEBYSCORE', exp_key, '-inf', '(' .. string.format('%.6f', t))
  for _, id in ipairs(expired) do drop_reservation(res_key, exp_key, held_key, id) end
end
