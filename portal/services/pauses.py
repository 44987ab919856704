"""Pausing a debtor's dunning, or one invoice's, for a reason and up to a day (included), and
resuming it early. The planner (dunning_jobs/planner.py, `remindable`) plans nothing that a pause
in force covers on its day, and the composer drops what was planned before the pause
(composing._claim); when the pause ends the invoice climbs on from the rung it stands on, the
ladder's gap counted from the last rung really sent, so no rung is skipped."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import or_, select

from ..extensions import db
from ..models import Debtor, DunningPause, Invoice, utcnow
from . import Conflict, Invalid, NotFound, events
from .atomic import atomic
from .checks import NUMBER, check_date, check_storable

#: how far ahead a pause may run: a longer hold is a decision to write off or to sue, not a pause
MAX_DAYS = 365
MAX_REASON = 200


def in_force(day):
    """SQL: a pause covering `day` (a date or a bound parameter) that nobody ended."""
    return (DunningPause.ended_at.is_(None)) & (DunningPause.until >= day)


def active(debtor_id: int, day: date) -> list[tuple[DunningPause, str | None]]:
    """The debtor's pauses in force on `day`, each with its invoice's number (None: the whole
    debtor), the latest end first."""
    return [(p, number) for p, number in db.session.execute(
        select(DunningPause, Invoice.number).outerjoin(Invoice, Invoice.id == DunningPause.invoice_id)
        .where(DunningPause.debtor_id == debtor_id, in_force(day))
        .order_by(DunningPause.until.desc(), DunningPause.id))]


def paused_on(debtor_ids, day: date) -> tuple[set[int], set[int]]:
    """(debtors paused as a whole, invoices paused on their own) among these debtors on `day`:
    what the composer drops."""
    debtors, invoices = set(), set()
    if debtor_ids:
        for debtor_id, invoice_id in db.session.execute(
                select(DunningPause.debtor_id, DunningPause.invoice_id)
                .where(DunningPause.debtor_id.in_(list(debtor_ids)), in_force(day))):
            (debtors if invoice_id is None else invoices).add(debtor_id if invoice_id is None else invoice_id)
    return debtors, invoices


def pause_end(debtor_id: int, invoice_id: int, day: date) -> date | None:
    """The last day of the pauses in force on `day` covering this invoice (its own or its
    debtor's), None when none does."""
    return db.session.scalar(
        select(DunningPause.until).where(DunningPause.debtor_id == debtor_id, in_force(day),
                                         or_(DunningPause.invoice_id.is_(None), DunningPause.invoice_id == invoice_id))
        .order_by(DunningPause.until.desc()).limit(1))


def check_pause(reason, until, today: date) -> tuple[str, date]:
    """The form's or the caller's values checked: a reason (200 characters at most) and a last
    day after today, at most MAX_DAYS ahead. Each refusal names its field (code for the form)."""
    if not isinstance(reason, str) or not reason.strip():
        raise Invalid("a reason is required", "reason", code="reason_required")
    if len(reason.strip()) > MAX_REASON:
        raise Invalid(f"the reason is longer than {MAX_REASON} characters", "reason", code="reason_too_long")
    reason = check_storable(reason.strip(), "reason")
    if not isinstance(until, str) or not until.strip():
        raise Invalid("the last day of the pause is required", "until", code="until_required")
    day = check_date(until.strip(), "until")
    if day <= today:
        raise Invalid("the pause must end after today", "until", code="until_past")
    if day > today + timedelta(days=MAX_DAYS):
        raise Invalid(f"a pause lasts {MAX_DAYS} days at most", "until", code="until_too_far")
    return reason, day


@atomic
def pause(debtor: Debtor, *, reason, until, invoice_number: str | None, today: date, user: str) -> DunningPause:
    """Hold the debtor's dunning (or one of its invoices') through `until`. Event dunning.paused."""
    reason, last_day = check_pause(reason, until, today)
    invoice = None
    if invoice_number:
        if not NUMBER.fullmatch(invoice_number):
            raise Invalid("no such invoice for this debtor", "invoice", code="invoice_unknown")
        invoice = db.session.scalar(select(Invoice).where(Invoice.debtor_id == debtor.id,
                                                          Invoice.number == invoice_number))
        if invoice is None:
            raise Invalid("no such invoice for this debtor", "invoice", code="invoice_unknown")
    row = DunningPause(creditor_id=debtor.creditor_id, debtor_id=debtor.id,
                       invoice_id=invoice.id if invoice else None, reason=reason, until=last_day, created_by=user)
    db.session.add(row)
    db.session.flush()
    events.record("dunning.paused", creditor_id=debtor.creditor_id, debtor_id=debtor.id,
                  invoice_id=invoice.id if invoice else None, actor="creditor", user=user, pause_id=row.id,
                  reason=reason, until=last_day.isoformat(), invoice=invoice.number if invoice else None)
    db.session.commit()
    return row


@atomic
def resume(creditor_id: int, debtor: Debtor, pause_id: int, *, today: date, user: str) -> DunningPause:
    """End a pause before its last day: dunning goes on from the next run. Event dunning.resumed.
    Another creditor's or another debtor's pause: NotFound; one already over: Conflict."""
    row = db.session.scalar(select(DunningPause).where(DunningPause.id == pause_id,
                                                       DunningPause.creditor_id == creditor_id,
                                                       DunningPause.debtor_id == debtor.id).with_for_update())
    if row is None:
        raise NotFound("no such pause", "pause")
    if row.ended_at is not None or row.until < today:
        raise Conflict("this pause is over already", "pause", code="pause_over")
    row.ended_at, row.ended_by = utcnow(), user
    number = db.session.scalar(select(Invoice.number).where(Invoice.id == row.invoice_id)) if row.invoice_id else None
    events.record("dunning.resumed", creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=row.invoice_id,
                  actor="creditor", user=user, pause_id=row.id, until=row.until.isoformat(), invoice=number)
    db.session.commit()
    return row
