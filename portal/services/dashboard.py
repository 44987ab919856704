"""The creditor's dashboard: KPIs, aged balance per debtor, portal adoption and the live feed,
all aggregated in SQL (formulas in portal/domain/ageing.py and portal/domain/charts.py), and each
creditor user's choice of notices (immediate or a daily digest)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, distinct, func, or_, select, update

from ..domain import ageing, charts
from ..domain.calendar import today_for
from ..extensions import db
from ..models import Creditor, CreditorUser, Debtor, Event, Invoice, PaymentAttempt, PortalLink
from . import Invalid, approvals, dunning_days, events, reports

# --- the activity feed ---------------------------------------------------------------------------

#: what the live feed shows: what debtors do, money moving, and messages going out
FEED_PREFIXES = ("portal.", "document.downloaded", "payment.", "invoice.paid", "invoice.reopened", "mandate.",
                 "dispute.", "promise.", "message.sent", "message.failed", "reminder.sent", "thank_you.sent",
                 "reminder.approved", "sms.replied", "sms.opted_out", "sms.undelivered")
FEED_LIMIT = 30


def _feed_filter():
    return or_(*[Event.type.like(p + "%") if p.endswith(".") else Event.type == p for p in FEED_PREFIXES])


def _feed_query(creditor_id: int):
    return (select(Event, Debtor.ref, Invoice.number, Debtor.name)
            .outerjoin(Debtor, Debtor.id == Event.debtor_id)
            .outerjoin(Invoice, Invoice.id == Event.invoice_id)
            .where(Event.creditor_id == creditor_id, _feed_filter()))


def feed_start(creditor_id: int, limit: int = FEED_LIMIT) -> tuple[list, int]:
    """The newest feed events, newest first, and the id the page polls after. The id is read
    first, so an event committed while the page renders comes with the next poll, never lost."""
    last_id = db.session.scalar(select(func.coalesce(func.max(Event.id), 0))
                                .where(Event.creditor_id == creditor_id)) or 0
    rows = events.named(db.session.execute(_feed_query(creditor_id).where(Event.id <= last_id)
                                           .order_by(Event.id.desc()).limit(limit)).all())
    return rows, int(last_id)


def feed_after(creditor_id: int, after: int, limit: int = FEED_LIMIT) -> tuple[list, int]:
    """Feed events after an id, newest first (to be prepended as they are), and the id to poll
    after next. The oldest `limit` are taken first: a burst arrives over a few polls in order."""
    last_id = db.session.scalar(select(func.coalesce(func.max(Event.id), 0))
                                .where(Event.creditor_id == creditor_id, Event.id > after)) or 0
    rows = events.named(db.session.execute(_feed_query(creditor_id).where(Event.id > after,
                                                                          Event.id <= max(last_id, after))
                                           .order_by(Event.id).limit(limit)).all())
    if len(rows) == limit:  # more are waiting: continue after the last one shown
        last_id = rows[-1][0].id
    return list(reversed(rows)), int(max(last_id, after))


# --- KPIs ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdoptionFigures:
    links_issued: int
    links_opened: int
    portal_payments: int
    #: paid through the portal, creditor currency, minor units
    portal_paid_amount: int
    debtors: charts.Adoption


def adoption(creditor: Creditor) -> AdoptionFigures:
    """Portal links issued and opened, and payments the debtors made through the portal (a card
    payment or a direct debit they started: not automatic collections) — one SQL statement."""
    link_scope = PortalLink.creditor_id == creditor.id
    paid_scope = and_(PaymentAttempt.creditor_id == creditor.id, PaymentAttempt.status == "succeeded",
                      PaymentAttempt.initiated_by == "debtor")
    figures = [
        select(func.count(PortalLink.id)).where(link_scope),
        select(func.count(PortalLink.first_opened_at)).where(link_scope),
        select(func.count(distinct(PortalLink.debtor_id))).where(link_scope),
        select(func.count(distinct(PortalLink.debtor_id))).where(link_scope, PortalLink.first_opened_at.is_not(None)),
        select(func.count(PaymentAttempt.id)).where(paid_scope),
        select(func.count(distinct(PaymentAttempt.debtor_id))).where(paid_scope),
        select(func.coalesce(func.sum(PaymentAttempt.amount), 0)).where(paid_scope,
                                                                         PaymentAttempt.currency == creditor.currency),
    ]
    row = db.session.execute(select(*(q.scalar_subquery() for q in figures))).one()
    issued, opened, reached, opened_debtors, payments, paying_debtors, amount = (int(v or 0) for v in row)
    return AdoptionFigures(links_issued=issued, links_opened=opened, portal_payments=payments,
                           portal_paid_amount=amount,
                           debtors=charts.Adoption(reached=reached, opened=opened_debtors, paid=paying_debtors))


def overview(creditor: Creditor, as_of: date, top: int = 10) -> dict:
    """Everything the dashboard shows but the feed. Outstanding, overdue, ageing, DSO and CEI at
    `as_of` (reports.summary: the same figures as GET /api/v1/reports/summary); top debtors and
    adoption are as they stand now."""
    buckets = reports.aged_balance(creditor, as_of)  # minor units, for the chart and the table
    summary = reports.summary(creditor, as_of)
    outstanding = sum(buckets.values())
    today = today_for(creditor)
    figures = adoption(creditor)
    top_rows = [r for r in reports.debtor_balances(creditor, today, limit=top) if r.balance > 0]
    return {
        "as_of": as_of,
        "today": today,
        "currency": creditor.currency,
        "outstanding": outstanding,
        "overdue": outstanding - buckets["not_due"],
        "dso_days": summary["dso_days"],
        "cei": summary["cei"],
        "cei_window": ageing.cei_window(as_of),
        "ageing": buckets,
        "shares": {k: charts.percent(v, outstanding) for k, v in buckets.items()},
        "chart": charts.column_chart(list(buckets.items())),
        "top_debtors": top_rows,
        "adoption": figures,
        # What needs a person: notices to approve, held days to release, failed runs.
        "awaiting_approvals": approvals.waiting_count(creditor.id, today),
        "held_days": dunning_days.held_days(creditor.id),
        "offer_hold": dunning_days.import_not_run_yet(creditor),
        "dunning_failures": dunning_days.recent_failures(creditor.id),
        "funnel": charts.row_chart([("reached", figures.debtors.reached), ("opened", figures.debtors.opened),
                                    ("paid", figures.debtors.paid)], total=figures.debtors.reached),
    }


def ageing_by_debtor(creditor: Creditor, as_of: date) -> list[tuple[str, str, dict[str, int]]]:
    """The aged balance at `as_of` per debtor (same rules as reports.aged_balance), one SQL
    statement grouped by debtor: [(ref, name, {bucket: minor units})], largest balance first."""
    due = Invoice.amount - reports._paid_by(as_of)
    cols = [func.coalesce(func.sum(case((reports._between(Invoice.due_date, lo, hi), due), else_=0)), 0).label(name)
            for name, (lo, hi) in ageing.bucket_bounds(as_of).items()]
    total = func.coalesce(func.sum(due), 0)
    q = (select(Debtor.ref, Debtor.name, *cols)
         .join(Invoice, Invoice.debtor_id == Debtor.id)
         .where(*reports._scope(creditor), Invoice.issue_date <= as_of)
         .group_by(Debtor.id, Debtor.ref, Debtor.name)
         .having(total != 0)
         .order_by(total.desc(), Debtor.ref))
    return [(ref, name, {k: int(v) for k, v in zip(ageing.BUCKETS, values)})
            for ref, name, *values in db.session.execute(q).all()]


# --- notices: immediate or a daily digest ----------------------------------------------------------

NOTIFY_CHOICES = ("immediate", "digest")


def set_notify(user: CreditorUser, choice: str) -> bool:
    """A creditor user's choice between one e-mail per notice and a daily digest; records
    `creditor_user.notify_changed` (the digest starts from that moment). False if unchanged."""
    if choice not in NOTIFY_CHOICES:
        raise Invalid("notify must be immediate or digest", "notify")
    previous = user.notify
    if previous == choice:
        return False
    # Conditional on the old value: two tabs saving at once record one change, not two.
    changed = db.session.execute(update(CreditorUser).where(CreditorUser.id == user.id,
                                                            CreditorUser.notify == previous)
                                 .values(notify=choice)).rowcount
    if changed:
        events.record("creditor_user.notify_changed", creditor_id=user.creditor_id, actor="creditor",
                      user=user.email, user_id=user.id, notify=choice, previous=previous)
    db.session.commit()
    return bool(changed)


# --- the aged balance per debtor, with its totals (the CSV export) ---------------------------------

@dataclass
class AgedBalanceTable:
    """ageing_by_debtor with each debtor's total and the column totals, in minor units."""
    rows: list[tuple[str, str, dict[str, int], int]]  # (ref, name, {bucket: amount}, total)
    totals: dict[str, int]
    total: int


def aged_balance_table(creditor: Creditor, as_of: date) -> AgedBalanceTable:
    totals = dict.fromkeys(ageing.BUCKETS, 0)
    rows = []
    for ref, name, buckets in ageing_by_debtor(creditor, as_of):
        rows.append((ref, name, buckets, sum(buckets.values())))
        for bucket in ageing.BUCKETS:
            totals[bucket] += buckets[bucket]
    return AgedBalanceTable(rows, totals, sum(totals.values()))
