"""Formal notices wait for the creditor: the list awaiting a decision, approve (the message is
composed then, with the figures of the day of approval), skip, postpone."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from ..extensions import db
from ..models import OPEN_STATUSES, Creditor, Debtor, Invoice, OutboxMessage, Reminder, utcnow
from . import NotFound, events, ladder
from .composing import build_message, top_step


def awaiting(creditor_id: int, today: date):
    """(debtor, [(reminder, invoice)]) waiting for the creditor's decision, postponed ones hidden."""
    rows = db.session.execute(
        select(Reminder, Invoice, Debtor).join(Invoice, Invoice.id == Reminder.invoice_id)
        .join(Debtor, Debtor.id == Reminder.debtor_id)
        .where(Reminder.creditor_id == creditor_id, Reminder.status == "awaiting_approval",
               (Reminder.postponed_to.is_(None)) | (Reminder.postponed_to <= today))
        .order_by(Debtor.name, Invoice.due_date)).all()
    grouped: dict[int, tuple[Debtor, list]] = {}
    for reminder, invoice, debtor in rows:
        grouped.setdefault(debtor.id, (debtor, []))[1].append((reminder, invoice))
    return list(grouped.values())


def _awaiting_for(creditor_id: int, debtor_id: int):
    return db.session.execute(
        select(Reminder, Invoice).join(Invoice, Invoice.id == Reminder.invoice_id)
        .where(Reminder.creditor_id == creditor_id, Reminder.debtor_id == debtor_id,
               Reminder.status == "awaiting_approval").with_for_update()).all()


def approve(creditor: Creditor, debtor_id: int, day: date, user: str) -> OutboxMessage | None:
    """Send the debtor's pending formal notice: e-mail with the letter attached, or letter only."""
    rows = _awaiting_for(creditor.id, debtor_id)
    if not rows:
        raise NotFound("nothing awaits approval for this debtor")
    debtor = db.session.get(Debtor, debtor_id)
    live = [(r, i) for r, i in rows if i.status in OPEN_STATUSES and not i.disputed]
    for reminder, invoice in rows:
        reminder.decided_at = utcnow()
        if (reminder, invoice) not in live:
            reminder.status = "cancelled"
    message = None
    if live:
        channel = "email" if debtor.email else "letter"
        message = build_message(creditor, debtor, "formal_notice", live, [], top_step(live), day, channel,
                                daily_key=None)
        for reminder, _ in live:
            reminder.status = "planned" if channel == "email" else "sent"
        if channel == "letter":  # approved into the print queue: sent, the invoices climb
            ladder.record_sent([reminder for reminder, _ in live], day)
        events.record("reminder.approved", creditor_id=creditor.id, debtor_id=debtor_id, actor="creditor",
                      user=user, message_id=message.id, invoices=[i.number for _, i in live])
    db.session.commit()
    return message


def skip(creditor_id: int, debtor_id: int, user: str) -> int:
    rows = _awaiting_for(creditor_id, debtor_id)
    for reminder, invoice in rows:
        reminder.status, reminder.decided_at = "skipped", utcnow()
        events.record("reminder.skipped", creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=invoice.id,
                      actor="creditor", user=user, step=reminder.step_code)
    db.session.commit()
    return len(rows)


def postpone(creditor_id: int, debtor_id: int, until: date, user: str) -> int:
    rows = _awaiting_for(creditor_id, debtor_id)
    for reminder, invoice in rows:
        reminder.postponed_to = until
        events.record("reminder.postponed", creditor_id=creditor_id, debtor_id=debtor_id, invoice_id=invoice.id,
                      actor="creditor", user=user, until=until.isoformat())
    db.session.commit()
    return len(rows)
