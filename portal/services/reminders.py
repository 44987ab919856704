"""Reminders: the names other layers use, from the modules that do the work (composing the
day's messages, the e-mail's MIME, the approvals of formal notices), and the record of what
was sent per invoice (the API's last_reminder)."""
from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import OutboxMessage, Reminder
from .approvals import DELIVERIES, approve, awaiting, postpone, skip
from .composing import build_message, compose_day
from .demand import reference_rates
from .message_texts import render_message
from .mime import smtp_bytes, to_email

__all__ = ["DELIVERIES", "approve", "awaiting", "postpone", "skip", "build_message", "compose_day", "reference_rates",
           "render_message", "smtp_bytes", "to_email", "last_sent"]


def last_sent(invoice_ids: list[int]) -> dict[int, dict]:
    """Per invoice, the most advanced reminder step sent and when (the API's last_reminder)."""
    if not invoice_ids:
        return {}
    rows = db.session.execute(
        select(Reminder.invoice_id, Reminder.step_code, Reminder.position, OutboxMessage.sent_at,
               OutboxMessage.created_at)
        .join(OutboxMessage, OutboxMessage.id == Reminder.message_id)
        .where(Reminder.invoice_id.in_(invoice_ids), Reminder.status == "sent",
               Reminder.step_code != "thank_you")).all()
    best: dict[int, tuple] = {}
    for invoice_id, step, position, sent_at, created_at in rows:
        if invoice_id not in best or position > best[invoice_id][0]:
            best[invoice_id] = (position, {"step": step, "sent_at": (sent_at or created_at).isoformat()})
    return {k: v[1] for k, v in best.items()}
