"""The dunning ladder's record (DESIGN.md "The ladder"): the rung each invoice reached and the day
it was sent, written when a send is recorded, so that the planner decides each invoice from its
own row (dunning_jobs/planner.py, portal/domain/schedule.py); failed steps, shown to the
creditor and planned again once the debtor's contact details change.

"Sent" is an e-mail accepted by the SMTP server (dunning_jobs/outbox_records.py, in its batch
statement) or a letter put in the print queue (reminders: composing, approving). An invoice
never goes down: a rung below the one reached changes nothing, the same rung sent again keeps
the later day. A notice before the due date (the courtesy notice) counts as rung 0: the invoice
keeps the day it went, so the planner needs no look at the reminders to know it was sent; the
thank-you is not on the ladder.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import bindparam, case, or_, select, update

from ..extensions import db
from ..models import OPEN_STATUSES, DunningStep, Invoice, OutboxMessage, Reminder
from . import events

INVOICE = Invoice.__table__
#: the one step that is not on any plan, hence not on the ladder
THANK_YOU = "thank_you"
#: the debtor's fields whose change gives its failed steps another chance
CONTACT_FIELDS = frozenset({"email", "address"})


def ladder_rung(rung: int | None, step_code: str) -> int | None:
    """A sent reminder's rung on the ladder: its own, 0 for a step before the due date (no rung
    of its own), None for the thank-you."""
    if rung is not None:
        return rung
    return None if step_code == THANK_YOU else 0


def ladder_rung_sql(rung: str, step_code: str) -> str:
    """ladder_rung in SQL, on a source's columns."""
    return f"CASE WHEN {rung} IS NULL AND {step_code} <> '{THANK_YOU}' THEN 0 ELSE {rung} END"


def _climb(rung, day) -> dict:
    """The invoice's new rung and day for a send of `rung` on `day` (SQL expressions), on rows
    where rung_reached <= rung: the rung itself, and its day unless the same rung was already
    sent later."""
    sent_on = INVOICE.c.rung_sent_on
    later = or_(rung > INVOICE.c.rung_reached, sent_on.is_(None), sent_on < day)
    return {"rung_sent_on": case((later, day), else_=sent_on), "rung_reached": rung}


CLIMB = (update(INVOICE).where(INVOICE.c.id == bindparam("invoice"), INVOICE.c.rung_reached <= bindparam("rung"))
         .values(**_climb(bindparam("rung"), bindparam("day"))))


def climb_sql(source: str) -> str:
    """The same update, set-based, for PostgreSQL: `source` is SQL (a CTE's name, a subquery)
    yielding (invoice_id, rung, day) rows, several per invoice allowed. Used by the outbox's
    one-statement record of a batch sent."""
    return ("UPDATE invoice SET rung_sent_on = CASE WHEN x.rung > invoice.rung_reached OR invoice.rung_sent_on IS NULL "
            "OR invoice.rung_sent_on < x.day THEN x.day ELSE invoice.rung_sent_on END, rung_reached = x.rung "
            f"FROM (SELECT invoice_id, max(rung) AS rung, max(day) AS day FROM {source} WHERE rung IS NOT NULL "
            "GROUP BY invoice_id) x WHERE invoice.id = x.invoice_id AND x.rung >= invoice.rung_reached")


def record_sends(connection, sends: list[tuple[int, int | None, date]]) -> None:
    """(invoice id, rung, day) sends recorded on `connection` (the caller's transaction), rungs as
    ladder_rung gives them; sends without one (thank-yous) change nothing."""
    rows = [{"invoice": invoice_id, "rung": rung, "day": day} for invoice_id, rung, day in sends if rung is not None]
    if rows:
        connection.execute(CLIMB, rows)


def record_sent(reminders: list[Reminder], day: date) -> None:
    """These reminders were sent on `day` (letters put in the print queue): their invoices climb
    to their rung. In the session's transaction; the caller commits."""
    record_sends(db.session.connection(), [(r.invoice_id, ladder_rung(r.rung, r.step_code), day) for r in reminders])


def replan_failed(debtor, actor: str) -> int:
    """The debtor's contact details changed: its failed reminders on invoices still open are
    planned again (their message forgotten), so the next dunning run composes them. The caller
    commits."""
    rows = db.session.execute(
        select(Reminder.id, Reminder.invoice_id, Reminder.step_code)
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.debtor_id == debtor.id, Reminder.status == "failed", Invoice.status.in_(OPEN_STATUSES))
    ).all()
    if not rows:
        return 0
    db.session.execute(update(Reminder).where(Reminder.id.in_([r.id for r in rows]))
                       .values(status="planned", message_id=None), execution_options={"synchronize_session": False})
    events.record_many([{"type": "reminder.replanned", "creditor_id": debtor.creditor_id, "debtor_id": debtor.id,
                         "invoice_id": invoice_id, "actor": actor, "data": {"step": step}}
                        for _id, invoice_id, step in rows], connection=db.session.connection())
    return len(rows)


def failed_steps(debtor_id: int) -> list[dict]:
    """What failed for the debtor and is not planned again yet: per reminder, the invoice, the
    step, the last attempt (the message's last scheduled attempt) and the server's answer."""
    rows = db.session.execute(
        select(Invoice.number, Reminder.step_code, DunningStep.tone, OutboxMessage.next_attempt_at,
               OutboxMessage.last_error)
        .join(Invoice, Invoice.id == Reminder.invoice_id)
        .outerjoin(DunningStep, DunningStep.id == Reminder.step_id)
        .outerjoin(OutboxMessage, OutboxMessage.id == Reminder.message_id)
        .where(Reminder.debtor_id == debtor_id, Reminder.status == "failed")
        .order_by(OutboxMessage.next_attempt_at.desc(), Invoice.number)).all()
    return [{"invoice": number, "step": step, "tone": tone, "at": at, "error": error}
            for number, step, tone, at, error in rows]
