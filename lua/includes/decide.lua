-- Deciding one transfer (include: decide), shared by the single and the batch transfer scripts
-- so both give the same status for the same state.
-- fa and ta are the accounts as a_read returns them (all nil: no such account). Returns the
-- status, and for OK the new debits of `from` and credits of `to`, or with `hold` their new
-- pending debits and credits.
-- Funds and overflow count open holds as if every one of them posts in full: a hold reserves
-- what it may take, and a post can then never fail for funds or overflow.
-- Precedence is the order of the checks below (status codes say nothing about it): a new check
-- goes where it belongs, with a new code in src/ledger/status.ts.
--- @include u128
--- @include account
local function t_decide(amount, currency, fa, ta, hold)
  local fcur, tcur = fa[{{A_CURRENCY}}], ta[{{A_CURRENCY}}]
  if not fcur or not tcur then return {{S_ACCOUNT_NOT_FOUND}} end
  if fa[{{A_CLOSED_AT}}] or ta[{{A_CLOSED_AT}}] then return {{S_ACCOUNT_CLOSED}} end
  if fcur ~= tcur or (currency ~= '' and currency ~= fcur) then
    return {{S_CURRENCY_MISMATCH}}
  end
  local fdp, tcp = fa[{{A_DEBITS_PENDING}}] or '0', ta[{{A_CREDITS_PENDING}}] or '0'
  local debits, credits = u_add(fa[{{A_DEBITS}}], amount), u_add(ta[{{A_CREDITS}}], amount)
  local allDebits, allCredits = debits, credits
  if fdp ~= '0' then allDebits = u_add(debits, fdp) end
  if tcp ~= '0' then allCredits = u_add(credits, tcp) end
  local overdraft = fa[{{A_OVERDRAFT}}]
  if overdraft ~= 'unlimited' and u_cmp(allDebits, u_add(fa[{{A_CREDITS}}], overdraft)) > 0 then
    return {{S_INSUFFICIENT_FUNDS}}
  end
  if u_cmp(allDebits, '{{AMOUNT_MAX}}') > 0 or u_cmp(allCredits, '{{AMOUNT_MAX}}') > 0 then
    return {{S_BALANCE_OVERFLOW}}
  end
  if hold then return {{S_OK}}, u_add(fdp, amount), u_add(tcp, amount) end
  return {{S_OK}}, debits, credits
end
