"""DSO, aged balance and CEI: totals aggregated in SQL, formulas in domain/ageing.py.

Late-payment charges items (charge_items) are what the debtor owes, so they count in the
outstanding, the overdue and the ageing (from their own due date, the day the message claimed
them), and in the CEI's receivables (opening, new in the window, closing alike, or claiming charges
would read as a collection failure). They are not sales: DSO's countback walks back through the
invoices issued only. A waived charges item leaves every figure, like a cancelled invoice."""
from __future__ import annotations

from datetime import date

from sqlalchemy import and_, case, func, select

from ..domain import ageing
from ..domain.money import to_decimal_string
from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, Payment, PaymentAllocation


def _paid_by(as_of: date):
    return (select(func.coalesce(func.sum(PaymentAllocation.amount - PaymentAllocation.reversed_amount), 0))
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(PaymentAllocation.invoice_id == Invoice.id, Payment.received_on <= as_of)
            .correlate(Invoice).scalar_subquery())


def _between(col, low, high):
    conds = []
    if low is not None:
        conds.append(col >= low)
    if high is not None:
        conds.append(col <= high)
    return and_(*conds)


def _scope(creditor: Creditor):
    return (Invoice.creditor_id == creditor.id, Invoice.currency == creditor.currency,
            Invoice.status != "cancelled")


def aged_balance(creditor: Creditor, as_of: date) -> dict[str, int]:
    """Outstanding at as_of (payments received after it do not count) per ageing bucket."""
    due = Invoice.amount - _paid_by(as_of)
    cols = [func.coalesce(func.sum(case((_between(Invoice.due_date, lo, hi), due), else_=0)), 0).label(name)
            for name, (lo, hi) in ageing.bucket_bounds(as_of).items()]
    row = db.session.execute(select(*cols).where(*_scope(creditor), Invoice.issue_date <= as_of)).one()
    return {name: int(v) for name, v in zip(ageing.BUCKETS, row)}


def summary(creditor: Creditor, as_of: date) -> dict:
    buckets = aged_balance(creditor, as_of)
    outstanding = sum(buckets.values())
    periods = ageing.countback_periods(as_of)
    window_start, _ = ageing.cei_window(as_of)
    sales_cols = [func.coalesce(func.sum(case((and_(Invoice.kind == "invoice", Invoice.issue_date > start,
                                                    Invoice.issue_date <= end),
                                                Invoice.amount), else_=0)), 0)
                  for start, end in periods]
    cei_sales = func.coalesce(func.sum(case((and_(Invoice.issue_date > window_start, Invoice.issue_date <= as_of),
                                             Invoice.amount), else_=0)), 0)
    row = db.session.execute(select(*sales_cols, cei_sales).where(*_scope(creditor))).one()
    dso = ageing.dso_countback(outstanding, [ageing.Period((end - start).days, int(s))
                                             for (start, end), s in zip(periods, row[:-1])])
    opening = sum(aged_balance(creditor, window_start).values())
    cei = ageing.cei(opening, int(row[-1]), outstanding, buckets["not_due"])
    cur = creditor.currency
    return {
        "as_of": as_of.isoformat(),
        "currency": cur,
        "outstanding": to_decimal_string(outstanding, cur),
        "overdue": to_decimal_string(outstanding - buckets["not_due"], cur),
        "dso_days": float(dso),  # a duration, not an amount: a JSON number with one decimal
        "ageing": {k: to_decimal_string(v, cur) for k, v in buckets.items()},
        "cei": None if cei is None else float(cei),  # percent
    }


def debtor_balances(creditor: Creditor, today: date, search: str | None = None, limit: int = 500):
    """Debtors with open balance and overdue part (creditor currency), largest first."""
    open_ = Invoice.status.in_(OPEN_STATUSES)
    due = Invoice.amount - Invoice.amount_paid
    balance = func.coalesce(func.sum(case((and_(open_, Invoice.currency == creditor.currency), due), else_=0)), 0)
    overdue = func.coalesce(func.sum(case((and_(open_, Invoice.currency == creditor.currency,
                                                Invoice.due_date < today), due), else_=0)), 0)
    count = func.count(case((open_, Invoice.id)))
    q = (select(Debtor, balance.label("balance"), overdue.label("overdue"), count.label("open_count"))
         .outerjoin(Invoice, Invoice.debtor_id == Debtor.id)
         .where(Debtor.creditor_id == creditor.id)
         .group_by(Debtor.id).order_by(balance.desc(), Debtor.name).limit(limit))
    if search:
        # Typed text is matched literally: no LIKE wildcards, no NUL (PostgreSQL refuses it).
        term = search.replace("\x00", "").lower()
        term = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{term}%"
        q = q.where(func.lower(Debtor.name).like(like, escape="\\") | func.lower(Debtor.ref).like(like, escape="\\"))
    return db.session.execute(q).all()
