"""What the back office's debtor page reads besides the ledger: each invoice's live promise to
pay and open dispute, and the messages sent to the debtor. Read-only; the caller has checked
that the debtor is the creditor's own (ledger.get_debtor), and every query names the creditor too."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import defer

from ..extensions import db
from ..models import Dispute, OutboxMessage, PaymentPromise
from .notes import KIND as MENTION

#: outbox messages about the debtor written to the creditor's own users, not to the debtor
TO_USERS = ("creditor_alert", "digest", MENTION)


def live_promises(creditor_id: int, debtor_id: int) -> dict[int, PaymentPromise]:
    """invoice id -> its live promise (one at most per invoice)."""
    return {p.invoice_id: p for p in db.session.scalars(select(PaymentPromise).where(
        PaymentPromise.creditor_id == creditor_id, PaymentPromise.debtor_id == debtor_id,
        PaymentPromise.status == "live"))}


def open_disputes(creditor_id: int, debtor_id: int) -> dict[int, Dispute]:
    """invoice id -> its open dispute (one at most per invoice)."""
    return {d.invoice_id: d for d in db.session.scalars(select(Dispute).where(
        Dispute.creditor_id == creditor_id, Dispute.debtor_id == debtor_id, Dispute.status == "open"))}


def messages_sent(creditor_id: int, debtor_id: int, limit: int = 100) -> list[OutboxMessage]:
    """The messages to the debtor (reminders, notices, thank-you notes, letters, links), newest
    first; bodies and attachments are not loaded (the outbox message page shows them)."""
    return list(db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.creditor_id == creditor_id, OutboxMessage.debtor_id == debtor_id,
               OutboxMessage.kind.not_in(TO_USERS))
        .options(defer(OutboxMessage.text_body), defer(OutboxMessage.html_body), defer(OutboxMessage.raw),
                 defer(OutboxMessage.attachment), defer(OutboxMessage.letter_html))
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)))
