-- Deciding one transfer (include: decide), shared by the single and the batch transfer scripts
-- so both give the same status for the same state.
-- fa and ta are the accounts as a_read returns them (all nil: no such account). Returns the
-- status, and for OK the new debits of `from` and credits of `to`.
-- Precedence is the order of the checks below (status codes say nothing about it): a new check
-- goes where it belongs, with a new code in src/ledger/status.ts.
--- @include u128
--- @include account
local function t_decide(amount, currency, fa, ta)
  local fcur, tcur = fa[{{A_CURRENCY}}], ta[{{A_CURRENCY}}]
  if not fcur or not tcur then return {{S_ACCOUNT_NOT_FOUND}} end
  if fcur ~= tcur or (currency ~= '' and currency ~= fcur) then
    return {{S_CURRENCY_MISMATCH}}
  end
  local debits, credits = u_add(fa[{{A_DEBITS}}], amount), u_add(ta[{{A_CREDITS}}], amount)
  local overdraft = fa[{{A_OVERDRAFT}}]
  if overdraft ~= 'unlimited' and u_cmp(debits, u_add(fa[{{A_CREDITS}}], overdraft)) > 0 then
    return {{S_INSUFFICIENT_FUNDS}}
  end
  if u_cmp(debits, '{{AMOUNT_MAX}}') > 0 or u_cmp(credits, '{{AMOUNT_MAX}}') > 0 then
    return {{S_BALANCE_OVERFLOW}}
  end
  return {{S_OK}}, debits, credits
end
