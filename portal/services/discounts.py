"""The early-payment discount in the ledger (CONTRACT §10): paid in full by its last day, the
discount settles the rest of the invoice.

"In full" is measured on the payment's day (the day the checkout completes, the direct debit is
created, the bank books the transfer, or the date a creditor posts): money reaching the balance
less the discount available that day. The ledger allocates each payment up to that amount first,
so a payment for several invoices never spends one invoice's discount on another; money beyond
it pays the discounted part after all (the debtor paid the full price: no discount needed).

The discount granted is a ledger payment of its own provider, "discount", allocated to the
invoice like a credit note: unique per (creditor, "discount", "invoice-<id>"), so it is granted
once per invoice whatever replays or concurrent deliveries bring. Relance issues no credit note:
the VAT credit note is the creditor's invoicing system's to issue (the back office says so).
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import bindparam, insert, select

from ..domain import discount
from ..domain.money import OpenItem, allocate as allocate_money
from ..models import Payment, PaymentAllocation

PROVIDER = "discount"
#: payments that are not the debtor's money: they earn no discount
NOT_MONEY = ("credit_note", PROVIDER)


def reference(invoice_id: int) -> str:
    """The discount payment's reference: one per invoice."""
    return f"invoice-{invoice_id}"


def offered(row, on: date | None) -> int:
    """What the discount would settle of this invoice (a row with amount, amount_paid,
    discount_percent, discount_until) if the rest were paid on `on`; 0 when none is available."""
    balance = row.amount - row.amount_paid
    if balance <= 0 or on is None or not discount.available(row.discount_until, on):
        return 0
    return balance - discount.due_now(row.amount, balance, row.discount_percent, row.discount_until, on)


def allocate(amount: int, order: list[int], invoices: dict, on: date | None) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """Spread `amount` over the invoices in `order` (ids of `invoices`, rows as for `offered`).
    Returns the money's (invoice id, amount) lines, in allocation order, and the discount each
    invoice paid in full on `on` is granted: {invoice id: amount}."""
    off = {i: offered(invoices[i], on) for i in order}
    balance = {i: invoices[i].amount - invoices[i].amount_paid for i in order}
    first, left = allocate_money(amount, [OpenItem(i, n, balance[i] - off[i]) for n, i in enumerate(order)])
    got = dict(first)
    reached = [i for i in order if off[i] and got.get(i, 0) == balance[i] - off[i]]
    extra = dict(allocate_money(left, [OpenItem(i, n, off[i]) for n, i in enumerate(reached)])[0]) if left else {}
    lines = dict(first)
    for i, a in extra.items():
        lines[i] = lines.get(i, 0) + a
    grants = {i: off[i] - extra.get(i, 0) for i in reached if lines.get(i) and off[i] > extra.get(i, 0)}
    return list(lines.items()), grants


def grant(conn, *, creditor_id: int, debtor_id: int, currency: str, on: date, grants: dict[int, int], invoices: dict,
          payment_id: int, actor: str) -> list[dict]:
    """Record the discounts granted (a "discount" payment and its allocation each), in the
    caller's transaction, with the invoices' rows already locked. Returns the events to record.
    An invoice already granted its discount (paid, reopened by a refund, paid again) is not
    granted it twice: the caller counts only what this returns in `granted`."""
    already = set(conn.execute(_GRANTED, {"c": creditor_id, "refs": [reference(i) for i in grants]}).scalars())
    rows = []
    for invoice_id, amount in grants.items():
        if reference(invoice_id) in already:
            continue
        discount_payment = conn.execute(_NEW_PAYMENT, {
            "creditor_id": creditor_id, "debtor_id": debtor_id, "provider": PROVIDER,
            "reference": reference(invoice_id), "amount": amount, "currency": currency,
            "received_on": on}).scalar_one()
        conn.execute(_NEW_ALLOCATION, {"payment_id": discount_payment, "invoice_id": invoice_id, "amount": amount})
        inv = invoices[invoice_id]
        rows.append({"type": "discount.granted", "creditor_id": creditor_id, "debtor_id": debtor_id,
                     "invoice_id": invoice_id, "actor": actor,
                     "data": {"amount": amount, "currency": currency, "percent": format(inv.discount_percent.normalize(), "f"),
                              "until": inv.discount_until.isoformat(), "paid_on": on.isoformat(),
                              "payment": payment_id, "discount_payment": discount_payment}})
    return rows


def granted_amounts(rows: list[dict]) -> dict[int, int]:
    """{invoice id: amount} of the discount.granted events `grant` returned."""
    return {r["invoice_id"]: r["data"]["amount"] for r in rows}


def granted_on(invoice_ids) -> dict[int, int]:
    """{invoice id: discount granted} for those of the invoices paid with their discount (the
    thank-you says so, beside what the debtor paid)."""
    from ..extensions import db

    ids = list(invoice_ids)
    if not ids:
        return {}
    return dict(db.session.execute(
        select(PaymentAllocation.invoice_id, PaymentAllocation.amount)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.provider == PROVIDER, PaymentAllocation.invoice_id.in_(ids))).all())


_PAY = Payment.__table__
_GRANTED = select(_PAY.c.reference).where(_PAY.c.creditor_id == bindparam("c"), _PAY.c.provider == PROVIDER,
                                          _PAY.c.reference.in_(bindparam("refs", expanding=True)))
_NEW_PAYMENT = insert(_PAY).returning(_PAY.c.id)
_NEW_ALLOCATION = insert(PaymentAllocation.__table__)
