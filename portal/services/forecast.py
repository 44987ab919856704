"""Cash forecast (CONTRACT §4 GET /reports/forecast) and the DSO trend shown beside it.

Forecast, per week (domain/forecast.py): every open item in the creditor's currency, not under
dispute, is expected on its due date moved by its debtor's average days late (payer behaviour,
rounded to whole days; a debtor with no paid invoice takes the creditor-wide average, and with
none at all, 0). A live promise to pay replaces that date for what it promised and is still to
come (its amount less what was paid since it was made; no amount = the whole balance), expected
on its date; the rest of the balance keeps the moved due date. Open items are summed in SQL by
(debtor, due date, promise date); only the moving and the weekly buckets are done here.

DSO trend: DSO at the end of each of the last 12 months (the current month: today), by the same
countback as GET /reports/summary (reports.py, domain/ageing.py): outstanding at each date in
one statement, sales per month in another.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import and_, case, func, select

from ..domain import ageing
from ..domain.forecast import weekly
from ..domain.money import to_decimal_string
from ..domain.payer import PayerStats, shift_days
from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Invoice, PaymentPromise
from . import reports
from .payer import all_debtors

MAX_WEEKS = 52
TREND_MONTHS = 12


def _open_items(creditor: Creditor):
    """(debtor_id, due_date, promised_date | None, not promised, promised) sums in minor units."""
    balance = Invoice.amount - Invoice.amount_paid
    p = PaymentPromise
    paid_since = Invoice.amount_paid - p.paid_before
    left = case((p.id.is_(None), 0), (p.amount.is_(None), balance), else_=p.amount - paid_since)
    promised = case((left <= 0, 0), (left >= balance, balance), else_=left)
    q = (select(Invoice.debtor_id, Invoice.due_date, p.promised_date,
                func.sum(balance - promised), func.sum(promised))
         .outerjoin(p, and_(p.invoice_id == Invoice.id, p.status == "live"))
         .where(Invoice.creditor_id == creditor.id, Invoice.currency == creditor.currency,
                Invoice.status.in_(OPEN_STATUSES), Invoice.disputed.is_(False))
         .group_by(Invoice.debtor_id, Invoice.due_date, p.promised_date))
    return db.session.execute(q).all()


def expected(creditor: Creditor) -> list[tuple[date, int]]:
    """(expected date, minor units) for every open item's parts."""
    stats = all_debtors(creditor.id)
    everyone = PayerStats(sum(s.invoices_paid for s in stats.values()), sum(s.days_late_total for s in stats.values()),
                          sum(s.paid_on_time for s in stats.values()))
    fallback = shift_days(everyone.average_days_late)
    out = []
    for debtor_id, due, promised_on, rest, promised in _open_items(creditor):
        shift = shift_days(stats[debtor_id].average_days_late) if debtor_id in stats else fallback
        if rest:
            out.append((due + timedelta(days=shift), int(rest)))
        if promised:
            out.append((promised_on, int(promised)))
    return out


def forecast(creditor: Creditor, weeks: int, today: date) -> dict:
    cur = creditor.currency
    return {"currency": cur, "weeks": [{"week_start": start.isoformat(), "expected": to_decimal_string(amount, cur)}
                                       for start, amount in weekly(expected(creditor), today, weeks)]}


def weekly_minor(creditor: Creditor, weeks: int, today: date) -> list[tuple[date, int]]:
    return weekly(expected(creditor), today, weeks)


def month_ends(today: date, months: int = TREND_MONTHS) -> list[date]:
    """The last day of each of the `months` months up to today's, oldest first; today for its own."""
    ends = []
    first = today.replace(day=1)
    for k in range(months - 1, 0, -1):
        ends.append(ageing.months_back(first, k - 1) - timedelta(days=1))
    return ends + [today]


def dso_trend(creditor: Creditor, today: date) -> list[tuple[date, float]]:
    """[(month end, DSO days)], oldest first: what GET /reports/summary?as_of= says at each."""
    ends = month_ends(today)
    due = [func.coalesce(func.sum(case((Invoice.issue_date <= end, Invoice.amount - reports._paid_by(end)),
                                       else_=0)), 0) for end in ends]
    outstanding = db.session.execute(select(*due).where(*reports._scope(creditor))).one()
    # Sales per countback month of each point: the union of their periods, summed once each.
    periods = {end: ageing.countback_periods(end) for end in ends}
    spans = sorted({span for spans in periods.values() for span in spans})
    sums = [func.coalesce(func.sum(case((and_(Invoice.kind == "invoice", Invoice.issue_date > start,
                                             Invoice.issue_date <= stop), Invoice.amount), else_=0)), 0)
            for start, stop in spans]
    sales = dict(zip(spans, db.session.execute(select(*sums).where(*reports._scope(creditor))).one()))
    return [(end, float(ageing.dso_countback(int(owed), [ageing.Period((stop - start).days, int(sales[(start, stop)]))
                                                          for start, stop in periods[end]])))
            for end, owed in zip(ends, outstanding)]
