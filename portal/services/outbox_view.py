"""The creditor's outbox, read-only: every query filtered by the creditor's id."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import defer

from ..extensions import db
from ..models import Debtor, OutboxMessage
from . import NotFound

STATUSES = ("pending", "sent", "failed", "letter")


def latest(creditor_id: int, status: str | None = None, kind: str | None = None,
           limit: int = 100) -> list[tuple[OutboxMessage, Debtor]]:
    """The newest messages with their debtor; bodies and attachments are not loaded."""
    q = (select(OutboxMessage, Debtor).join(Debtor, Debtor.id == OutboxMessage.debtor_id)
         .where(OutboxMessage.creditor_id == creditor_id)
         .options(defer(OutboxMessage.text_body), defer(OutboxMessage.html_body),
                  defer(OutboxMessage.attachment), defer(OutboxMessage.letter_html)))
    if status:
        q = q.where(OutboxMessage.status == status)
    if kind:
        q = q.where(OutboxMessage.kind == kind)
    q = q.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
    return [(m, d) for m, d in db.session.execute(q)]


def get(creditor_id: int, message_id: int) -> tuple[OutboxMessage, Debtor]:
    row = db.session.execute(
        select(OutboxMessage, Debtor).join(Debtor, Debtor.id == OutboxMessage.debtor_id)
        .where(OutboxMessage.id == message_id, OutboxMessage.creditor_id == creditor_id)).first()
    if row is None:
        raise NotFound("no such message")
    return row[0], row[1]
