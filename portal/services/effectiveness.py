"""What each reminder achieves (CONTRACT §4 GET /reports/dunning): per step and channel, the
dunning messages sent in a period, the portal visits after them, the invoices paid and the money
collected after them. One SQL statement, the same on PostgreSQL and SQLite.

- A message is a dunning message (not a thank-you) with at least one reminder recorded sent; its
  moment is when it was handed over (an e-mail) or queued for print (a letter), its day that
  moment's calendar day in the creditor's time zone. The period (from, to) holds those days.
- Its step is its most advanced one (highest position), its channel the message's (email, letter).
- A call task closed counts as a message on channel `call`, at its closing, for its step and invoices.
- Portal visits: the debtor's portal openings after the message and before its next dunning message.
- Credit: a payment (a credit note is not one) goes to the last message naming its invoice sent
  on or before the payment's day; an invoice paid in full (payer.paid_invoices: the day its
  balance reached zero) goes to the last message naming it sent on or before that day. Both
  count for the message only within 7 / 30 days of its day (the day itself is day 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, func, literal, or_, select, union_all

from ..domain.calendar import day_start
from ..domain.money import to_decimal_string
from ..extensions import db
from ..models import Creditor, Event, OutboxMessage, Payment, PaymentAllocation, Reminder, Task, TaskInvoice
from . import Invalid
from .checks import check_date
from .payer import CREDIT_NOTE, paid_invoices
from .sql_days import days_between, local_day, ready

#: the windows after a message (days)
WITHIN_SHORT, WITHIN_LONG = 7, 30
ORDER = "from must be on or before to"
#: the default period when none is given: the last 90 days up to today
DEFAULT_DAYS = 90


@dataclass(frozen=True)
class StepFigures:
    step: str
    channel: str
    position: int
    sent: int
    portal_visits: int
    paid_within_7_days: int
    paid_within_30_days: int
    #: minor units, creditor's currency
    collected_within_30_days: int

    def as_json(self, currency: str) -> dict:
        return {"step": self.step, "channel": self.channel, "sent": self.sent, "portal_visits": self.portal_visits,
                "paid_within_7_days": self.paid_within_7_days, "paid_within_30_days": self.paid_within_30_days,
                "amount_collected_within_30_days": to_decimal_string(self.collected_within_30_days, currency)}


def period(raw_from: str | None, raw_to: str | None, today: date) -> tuple[date, date]:
    """The checked period: ISO dates, from <= to; a missing end defaults to today, a missing
    start to DEFAULT_DAYS days before the end."""
    end = check_date(raw_to, "to") if raw_to is not None else today
    start = check_date(raw_from, "from") if raw_from is not None else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Invalid(ORDER, "from")
    return start, end


def _statement(creditor: Creditor, start: date, end: date):
    cid, zone = creditor.id, creditor.timezone
    r, m = Reminder, OutboxMessage
    at = func.coalesce(m.sent_at, m.created_at)
    # Every dunning message of the creditor, each (message, invoice) it named.
    sent = (select(m.id.label("message_id"), m.debtor_id.label("debtor_id"), m.channel.label("channel"),
                   r.invoice_id.label("invoice_id"), r.step_code.label("step"), r.position.label("position"),
                   at.label("at"), local_day(at, literal(zone)).label("day"))
            .join(r, r.message_id == m.id)
            .where(m.creditor_id == cid, r.creditor_id == cid, r.status == "sent", r.step_code != "thank_you"))
    # A call step closed is the step sent on channel `call` (DESIGN "The ladder"): one "message" per
    # closed task, at its closing, naming its invoices. Negative ids keep them apart from the outbox's.
    called = (select((-Task.id).label("message_id"), Task.debtor_id, literal("call").label("channel"),
                     TaskInvoice.invoice_id, r.step_code, r.position,
                     Task.closed_at, local_day(Task.closed_at, literal(zone)))
              .join(TaskInvoice, TaskInvoice.task_id == Task.id)
              .join(r, r.id == TaskInvoice.reminder_id)
              .where(Task.creditor_id == cid, Task.status == "done", r.creditor_id == cid, r.status == "sent"))
    named = union_all(sent, called).cte("named")
    # One row per message: its most advanced step, and when the debtor's next message went.
    ranked = select(named, func.row_number().over(partition_by=named.c.message_id,
                                                  order_by=(named.c.position.desc(), named.c.step)).label("rn")
                    ).subquery("ranked")
    messages = (select(ranked.c.message_id, ranked.c.debtor_id, ranked.c.channel, ranked.c.step, ranked.c.position,
                       ranked.c.at, ranked.c.day,
                       func.lead(ranked.c.at).over(partition_by=ranked.c.debtor_id,
                                                   order_by=(ranked.c.at, ranked.c.message_id)).label("next_at"))
                .where(ranked.c.rn == 1).cte("messages"))
    # The period, as UTC bounds of its local days (the index-friendly form of day BETWEEN start AND end).
    in_period = (select(messages)
                 .where(messages.c.at >= day_start(start, zone), messages.c.at < day_start(end + timedelta(days=1), zone))
                 .cte("in_period"))

    visits = (select(in_period.c.message_id, func.count(Event.id).label("visits"))
              .join(Event, and_(Event.creditor_id == cid, Event.debtor_id == in_period.c.debtor_id,
                                Event.type == "portal.opened", Event.at > in_period.c.at,
                                or_(in_period.c.next_at.is_(None), Event.at < in_period.c.next_at)))
              .group_by(in_period.c.message_id).subquery("visits"))

    # Money received: each allocation still standing, credited to the last message before it.
    net = PaymentAllocation.amount - PaymentAllocation.reversed_amount
    money = (select(PaymentAllocation.id.label("allocation_id"), PaymentAllocation.invoice_id.label("invoice_id"),
                    net.label("amount"), Payment.received_on.label("received_on"))
             .join(Payment, Payment.id == PaymentAllocation.payment_id)
             .where(Payment.creditor_id == cid, Payment.currency == creditor.currency,
                    Payment.provider != CREDIT_NOTE, net > 0).subquery("money"))
    money_credit = select(
        money.c.amount, named.c.message_id, days_between(money.c.received_on, named.c.day).label("after"),
        func.row_number().over(partition_by=money.c.allocation_id,
                               order_by=(named.c.at.desc(), named.c.message_id.desc())).label("rn")
    ).join(named, and_(named.c.invoice_id == money.c.invoice_id, named.c.day <= money.c.received_on)
           ).subquery("money_credit")
    collected = (select(money_credit.c.message_id, func.sum(money_credit.c.amount).label("collected"))
                 .where(money_credit.c.rn == 1, money_credit.c.after <= WITHIN_LONG)
                 .group_by(money_credit.c.message_id).subquery("collected"))

    # Invoices paid in full, credited the same way from the day their balance reached zero.
    paid = paid_invoices(cid)
    paid_credit = select(
        named.c.message_id, days_between(paid.c.paid_on, named.c.day).label("after"),
        func.row_number().over(partition_by=paid.c.invoice_id,
                               order_by=(named.c.at.desc(), named.c.message_id.desc())).label("rn")
    ).join(named, and_(named.c.invoice_id == paid.c.invoice_id, named.c.day <= paid.c.paid_on)).subquery("paid_credit")
    first = paid_credit.c.rn == 1
    paid_counts = (select(paid_credit.c.message_id,
                          func.count().filter(paid_credit.c.after <= WITHIN_SHORT).label("short"),
                          func.count().label("long"))
                   .where(first, paid_credit.c.after <= WITHIN_LONG)
                   .group_by(paid_credit.c.message_id).subquery("paid_counts"))

    return (select(in_period.c.step, in_period.c.channel, func.max(in_period.c.position),
                   func.count(in_period.c.message_id),
                   func.coalesce(func.sum(visits.c.visits), 0),
                   func.coalesce(func.sum(paid_counts.c.short), 0),
                   func.coalesce(func.sum(paid_counts.c.long), 0),
                   func.coalesce(func.sum(collected.c.collected), 0))
            .outerjoin(visits, visits.c.message_id == in_period.c.message_id)
            .outerjoin(paid_counts, paid_counts.c.message_id == in_period.c.message_id)
            .outerjoin(collected, collected.c.message_id == in_period.c.message_id)
            .group_by(in_period.c.step, in_period.c.channel)
            .order_by(func.max(in_period.c.position), in_period.c.step, in_period.c.channel))


def by_step(creditor: Creditor, start: date, end: date) -> list[StepFigures]:
    """The figures per (step, channel) for the messages sent from `start` to `end` (local days),
    least advanced step first."""
    ready()
    return [StepFigures(step, channel, int(position), *(int(v) for v in figures))
            for step, channel, position, *figures in db.session.execute(_statement(creditor, start, end)).all()]


def report(creditor: Creditor, start: date, end: date) -> dict:
    """CONTRACT §4 GET /reports/dunning."""
    return {"from": start.isoformat(), "to": end.isoformat(), "currency": creditor.currency,
            "steps": [s.as_json(creditor.currency) for s in by_step(creditor, start, end)]}


def totals(steps: list[StepFigures]) -> StepFigures:
    """Every step together (the table's last line)."""
    return StepFigures("", "", 0, *(sum(getattr(s, f) for s in steps) for f in
                                    ("sent", "portal_visits", "paid_within_7_days", "paid_within_30_days",
                                     "collected_within_30_days")))
