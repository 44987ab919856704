"""Payer behaviour (CONTRACT §4 `payer`): how each debtor pays its invoices, aggregated in SQL
over the creditor's fully paid invoices; the arithmetic is portal/domain/payer.py.

Counted: invoices (kind "invoice": a charges item is not a sale) whose status is paid, settled at
least in part by money (an invoice cleared wholly by a credit note was not paid by the debtor).
Paid on = the day the balance reached zero: the latest date among the payments still standing on
it (credit notes included, since they lower what is owed; a fully reversed payment left out).
One statement serves one debtor, the debtors list or the whole creditor alike: no per-debtor loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Float, and_, case, cast, func, select

from ..domain import ageing
from ..domain.payer import PayerStats, trend
from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, Payment, PaymentAllocation
from .sql_days import days_between

#: the ledger's provider for a credit note (disputes.resolve, the back office): not money received
CREDIT_NOTE = "credit_note"
#: months compared by the trend: the last TREND_MONTHS against the TREND_MONTHS before
TREND_MONTHS = 6


def paid_invoices(creditor_id: int, debtor_id: int | None = None):
    """Subquery, one row per fully paid invoice (of one debtor if given, by its index): invoice_id,
    debtor_id, due_date, paid_on."""
    net = PaymentAllocation.amount - PaymentAllocation.reversed_amount
    money = func.sum(case((Payment.provider != CREDIT_NOTE, net), else_=0))
    q = (select(Invoice.id.label("invoice_id"), Invoice.debtor_id.label("debtor_id"),
                Invoice.due_date.label("due_date"), func.max(Payment.received_on).label("paid_on"))
         .join(PaymentAllocation, PaymentAllocation.invoice_id == Invoice.id)
         .join(Payment, Payment.id == PaymentAllocation.payment_id)
         .where(Invoice.creditor_id == creditor_id, Invoice.kind == "invoice", Invoice.status == "paid", net > 0)
         .group_by(Invoice.id, Invoice.debtor_id, Invoice.due_date)
         .having(money > 0))
    if debtor_id is not None:
        q = q.where(Invoice.debtor_id == debtor_id)
    return q.subquery("paid_invoices")


def _figures(paid, where=None):
    """(count, days late total, on time) columns over the paid-invoices subquery, optionally
    only the rows matching `where` (a window of paid_on)."""
    late = days_between(paid.c.paid_on, paid.c.due_date)
    only = (lambda value: case((where, value), else_=None)) if where is not None else (lambda value: value)
    return (func.count(only(paid.c.invoice_id)),
            func.coalesce(func.sum(only(case((late > 0, late), else_=0))), 0),
            func.coalesce(func.sum(only(case((late <= 0, 1), else_=0))), 0))


def _stats(row) -> PayerStats:
    n, total, on_time = (int(v or 0) for v in row)
    return PayerStats(n, total, on_time)


def by_debtor(creditor_id: int):
    """Subquery, one row per debtor with a paid invoice: debtor_id, invoices_paid, days_late_total,
    paid_on_time."""
    paid = paid_invoices(creditor_id)
    n, total, on_time = _figures(paid)
    return (select(paid.c.debtor_id, n.label("invoices_paid"), total.label("days_late_total"),
                   on_time.label("paid_on_time"))
            .group_by(paid.c.debtor_id).subquery("payer"))


def for_debtor(debtor: Debtor) -> PayerStats:
    paid = paid_invoices(debtor.creditor_id, debtor.id)
    return _stats(db.session.execute(select(*_figures(paid))).one())


def all_debtors(creditor_id: int) -> dict[int, PayerStats]:
    """debtor id -> its stats, for every debtor with a paid invoice (one statement)."""
    q = by_debtor(creditor_id)
    return {row.debtor_id: PayerStats(int(row.invoices_paid), int(row.days_late_total), int(row.paid_on_time))
            for row in db.session.execute(select(q))}


@dataclass(frozen=True)
class Behaviour:
    """The debtor page's block: all time, and the trend of the last months against those before."""
    overall: PayerStats
    recent: PayerStats
    before: PayerStats
    #: better, worse, steady, or None (a period without paid invoices)
    trend: str | None
    #: the windows compared: (start exclusive, end inclusive) of each
    recent_window: tuple[date, date]
    before_window: tuple[date, date]


def behaviour(debtor: Debtor, today: date) -> Behaviour:
    """Overall figures and the trend, in one statement: invoices paid in the last TREND_MONTHS
    months (paid_on after the same day TREND_MONTHS months ago, up to today) against the
    TREND_MONTHS months before."""
    middle, start = ageing.months_back(today, TREND_MONTHS), ageing.months_back(today, 2 * TREND_MONTHS)
    paid = paid_invoices(debtor.creditor_id, debtor.id)
    recent = and_(paid.c.paid_on > middle, paid.c.paid_on <= today)
    before = and_(paid.c.paid_on > start, paid.c.paid_on <= middle)
    row = db.session.execute(select(*_figures(paid), *_figures(paid, recent), *_figures(paid, before))).one()
    overall, r, b = _stats(row[0:3]), _stats(row[3:6]), _stats(row[6:9])
    return Behaviour(overall, r, b, trend(r, b), (middle, today), (start, middle))


# --- the debtors list, sortable by balance, name or payer behaviour --------------------------------

#: ?sort= keys and their first direction: a click on a payer column shows the worst payers first
SORTS = {"balance": "desc", "overdue": "desc", "name": "asc", "late": "desc", "on_time": "asc"}


@dataclass(frozen=True)
class DebtorRow:
    debtor: Debtor
    balance: int
    overdue: int
    open_count: int
    payer: PayerStats


def debtor_list(creditor: Creditor, today: date, search: str | None = None, sort: str = "balance",
                direction: str | None = None, limit: int = 500, owner_id: int | None = None) -> list[DebtorRow]:
    """Debtors with open balance, overdue part (creditor currency), open invoices and payer
    behaviour, in one statement. Debtors without a paid invoice sort last on the payer columns.
    `owner_id`: only the debtors that user is in charge of ("mine")."""
    sort = sort if sort in SORTS else "balance"
    direction = direction if direction in ("asc", "desc") else SORTS[sort]
    open_ = Invoice.status.in_(OPEN_STATUSES)
    due = Invoice.amount - Invoice.amount_paid
    mine = and_(open_, Invoice.currency == creditor.currency)
    balance = func.coalesce(func.sum(case((mine, due), else_=0)), 0)
    overdue = func.coalesce(func.sum(case((and_(mine, Invoice.due_date < today), due), else_=0)), 0)
    count = func.count(case((open_, Invoice.id)))
    payer = by_debtor(creditor.id)
    # One payer row per debtor at most: max() only lifts it through the GROUP BY.
    n, total, on_time = (func.max(payer.c.invoices_paid), func.max(payer.c.days_late_total),
                         func.max(payer.c.paid_on_time))
    # Ordering only (the figures shown are exact decimals from domain/payer.py).
    keys = {"balance": balance, "overdue": overdue, "name": func.lower(Debtor.name),
            "late": cast(total, Float) / n, "on_time": cast(on_time, Float) / n}
    key = keys[sort]
    ordered = key.desc() if direction == "desc" else key.asc()
    q = (select(Debtor, balance, overdue, count, n, total, on_time)
         .outerjoin(Invoice, Invoice.debtor_id == Debtor.id)
         .outerjoin(payer, payer.c.debtor_id == Debtor.id)
         .where(Debtor.creditor_id == creditor.id)
         .group_by(Debtor.id)
         .order_by(ordered.nulls_last(), Debtor.name, Debtor.id).limit(limit))
    if owner_id is not None:
        q = q.where(Debtor.owner_id == owner_id)
    if search:
        # Typed text is matched literally: no LIKE wildcards, no NUL (PostgreSQL refuses it).
        term = search.replace("\x00", "").lower()
        term = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{term}%"
        q = q.where(func.lower(Debtor.name).like(like, escape="\\") | func.lower(Debtor.ref).like(like, escape="\\"))
    return [DebtorRow(d, int(b), int(o), int(c), PayerStats(int(pn or 0), int(pt or 0), int(po or 0)))
            for d, b, o, c, pn, pt, po in db.session.execute(q).all()]
