-- Deciding one transfer (include: decide), shared by the single and the batch transfer scripts
-- so both give the same status for the same state. Needs the u128 include.
-- fcur/tcur are the accounts' currencies (nil: no such account); fdr, fcr, fod the debit
-- account's debits, credits and overdraft limit; tcr the credit account's credits.
-- Returns status, and for OK the new debits of `from` and credits of `to`. Precedence:
-- ACCOUNT_NOT_FOUND, CURRENCY_MISMATCH, INSUFFICIENT_FUNDS, BALANCE_OVERFLOW.
local function t_decide(amount, currency, fcur, fdr, fcr, fod, tcur, tcr)
  if not fcur or not tcur then return {{S_ACCOUNT_NOT_FOUND}} end
  if fcur ~= tcur or (currency ~= '' and currency ~= fcur) then
    return {{S_CURRENCY_MISMATCH}}
  end
  local debits, credits = u_add(fdr, amount), u_add(tcr, amount)
  if fod ~= 'unlimited' and u_cmp(debits, u_add(fcr, fod)) > 0 then
    return {{S_INSUFFICIENT_FUNDS}}
  end
  if u_cmp(debits, '{{AMOUNT_MAX}}') > 0 or u_cmp(credits, '{{AMOUNT_MAX}}') > 0 then
    return {{S_BALANCE_OVERFLOW}}
  end
  return {{S_OK}}, debits, credits
end
