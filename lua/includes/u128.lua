-- Unsigned decimal-string arithmetic for money (include: u128).
-- Values are strings of digits without leading zeros ("0" is zero); they may exceed 2^128-1
-- (a sum is computed before it is compared with the maximum). Whole values are never turned
-- into Lua numbers: only limbs of at most 14 digits are, which a double holds exactly, and a
-- limb sum stays below 2^53.
local LIMB_DIGITS = 14
local LIMB_BASE = 100000000000000
local SMALL_DIGITS = 15 -- two values this short add exactly as doubles (sum < 2 * 10^15 < 2^53)

local function u_cmp(a, b)
  local la, lb = #a, #b
  if la ~= lb then
    if la < lb then return -1 end
    return 1
  end
  if a == b then return 0 end
  if a < b then return -1 end
  return 1
end

local function u_limbs(s)
  local t, i = {}, #s
  while i > 0 do
    local j = i - LIMB_DIGITS + 1
    if j < 1 then j = 1 end
    t[#t + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return t
end

local function u_join(t)
  local n = #t
  while n > 1 and t[n] == 0 do n = n - 1 end
  local out = { string.format('%d', t[n]) }
  for i = n - 1, 1, -1 do out[#out + 1] = string.format('%014d', t[i]) end
  return table.concat(out)
end

local function u_add(a, b)
  if #a <= SMALL_DIGITS and #b <= SMALL_DIGITS then
    return string.format('%d', tonumber(a) + tonumber(b))
  end
  local x, y, r, carry = u_limbs(a), u_limbs(b), {}, 0
  local n = #x
  if #y > n then n = #y end
  for i = 1, n do
    local s = (x[i] or 0) + (y[i] or 0) + carry
    if s >= LIMB_BASE then
      r[i], carry = s - LIMB_BASE, 1
    else
      r[i], carry = s, 0
    end
  end
  if carry > 0 then r[n + 1] = carry end
  return u_join(r)
end

-- a - b, for a >= b.
local function u_sub(a, b)
  if #a <= SMALL_DIGITS then
    return string.format('%d', tonumber(a) - tonumber(b))
  end
  local x, y, r, borrow = u_limbs(a), u_limbs(b), {}, 0
  for i = 1, #x do
    local d = x[i] - (y[i] or 0) - borrow
    if d < 0 then
      r[i], borrow = d + LIMB_BASE, 1
    else
      r[i], borrow = d, 0
    end
  end
  return u_join(r)
end

-- Signed a - b of two unsigned values, e.g. a balance from credits and debits.
local function s_diff(a, b)
  if u_cmp(a, b) >= 0 then return u_sub(a, b) end
  return '-' .. u_sub(b, a)
end

-- True when s is a canonical unsigned decimal no larger than 2^128-1.
local function u_valid(s)
  return #s <= {{L_AMOUNT_DIGITS_MAX}} and string.find(s, '^%d+$') ~= nil
    and (s == '0' or string.byte(s, 1) ~= 48) and u_cmp(s, '{{AMOUNT_MAX}}') <= 0
end
