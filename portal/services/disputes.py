"""Disputes: a debtor's objection to one open invoice, the thread with the creditor, and its
resolution. One use case per function, each owning its transaction and writing an event for
every state change.

While a dispute is open its invoice carries `disputed = True`: the planner does not remind it
and the composer drops reminders planned for it, so dunning pauses for that invoice only.
Resolving clears the flag: a credit note (through the one ledger) or a corrected amount, or a
rejection; on the next dunning day the planner gives the invoice its next rung of the ladder
(portal/domain/schedule.py), a step cancelled during the dispute included.

Every portal query here filters by the session's debtor id, every back-office query by the
creditor's id: a dispute, message or attachment of anyone else reads as not found.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from flask_babel import force_locale
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer, selectinload

from ..domain.calendar import today_for
from ..extensions import db
from ..models import (DISPUTE_REASONS, DISPUTE_RESOLUTIONS, OPEN_STATUSES, Creditor, Debtor, Dispute,
                      DisputeAttachment, DisputeMessage, Invoice, Reminder, utcnow)
from . import Conflict, Invalid, NotFound, alerts, events, ledger, reminders
from .atomic import atomic
from .checks import REF, UNSTORABLE, amount_of
from .dispute_files import Attachment, Upload, read_attachment
from .dispute_mail import REASON_LABELS, email_debtor
from .ledger import status_for

MAX_BODY_CHARS = 5000


# --- checks --------------------------------------------------------------------------------------

def check_reason(value) -> str:
    if value not in DISPUTE_REASONS:
        raise Invalid("reason must be one of " + ", ".join(DISPUTE_REASONS), "reason", code="reason")
    return value


def check_body(value, field_name: str = "comment") -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field_name} is required", field_name, code="body_required")
    value = value.replace("\r\n", "\n").strip()
    if len(value) > MAX_BODY_CHARS:
        raise Invalid(f"{field_name} is longer than {MAX_BODY_CHARS} characters", field_name, code="body_too_long")
    if UNSTORABLE.search(value):
        raise Invalid(f"{field_name} contains control characters or invalid Unicode", field_name, code="body_invalid")
    return value


def _add_attachment(message: DisputeMessage, dispute: Dispute, attachment: Attachment | None) -> DisputeAttachment | None:
    if attachment is None:
        return None
    row = DisputeAttachment(creditor_id=dispute.creditor_id, debtor_id=dispute.debtor_id, message=message,
                            filename=attachment.filename, content_type=attachment.content_type,
                            size=len(attachment.content), sha256=hashlib.sha256(attachment.content).hexdigest(),
                            content=attachment.content)
    db.session.add(row)
    return row


def _commit_or_conflict() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("this invoice already has an open dispute", "invoice", code="already_open") from None


# --- the debtor's side (every query filters by the session's debtor id) -------------------------

@dataclass
class DebtorThread:
    """What the portal's dispute pages show; `debtor` and `creditor` feed the portal layout."""
    debtor: Debtor
    creditor: Creditor
    invoice: Invoice
    dispute: Dispute | None = None
    messages: list[DisputeMessage] = field(default_factory=list)


def _debtor_and_creditor(debtor_id: int) -> tuple[Debtor, Creditor]:
    row = db.session.execute(select(Debtor, Creditor).join(Creditor, Creditor.id == Debtor.creditor_id)
                             .where(Debtor.id == debtor_id)).first()
    if row is None:
        raise NotFound("no such debtor")
    return row[0], row[1]


def _debtor_invoice(debtor_id: int, number, lock: bool = False) -> Invoice:
    if not isinstance(number, str) or not REF.fullmatch(number):
        raise NotFound("no such invoice")
    q = select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.number == number)
    invoice = db.session.scalar(q.with_for_update() if lock else q)
    if invoice is None:
        raise NotFound("no such invoice")
    return invoice


def open_dispute_for(debtor_id: int, number) -> Dispute | None:
    invoice = _debtor_invoice(debtor_id, number)
    return db.session.scalar(select(Dispute).where(Dispute.debtor_id == debtor_id, Dispute.invoice_id == invoice.id,
                                                   Dispute.status == "open"))


def new_dispute_page(debtor_id: int, number) -> DebtorThread:
    """The form's page: the invoice, and its open dispute if it has one already."""
    debtor, creditor = _debtor_and_creditor(debtor_id)
    invoice = _debtor_invoice(debtor_id, number)
    dispute = db.session.scalar(select(Dispute).where(Dispute.debtor_id == debtor_id, Dispute.invoice_id == invoice.id,
                                                      Dispute.status == "open"))
    if dispute is None and invoice.status not in OPEN_STATUSES:
        raise NotFound("only an open invoice can be disputed")
    return DebtorThread(debtor, creditor, invoice, dispute)


@atomic
def open_dispute(debtor_id: int, number, *, reason, comment, upload: Upload | None = None) -> Dispute:
    """The debtor disputes one of its open invoices: reminders pause for that invoice only, the
    creditor's users are told (each as they chose) in the same transaction."""
    reason = check_reason(reason)
    comment = check_body(comment)
    attachment = read_attachment(upload)
    debtor, creditor = _debtor_and_creditor(debtor_id)
    invoice = _debtor_invoice(debtor_id, number, lock=True)
    if invoice.status not in OPEN_STATUSES:
        raise Conflict("only an open invoice can be disputed", "invoice", code="not_open")
    if db.session.scalar(select(Dispute.id).where(Dispute.invoice_id == invoice.id, Dispute.status == "open")):
        raise Conflict("this invoice already has an open dispute", "invoice", code="already_open")
    dispute = Dispute(creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=invoice.id, reason=reason,
                      status="open", opened_at=utcnow())
    message = DisputeMessage(dispute=dispute, author="debtor", author_name=debtor.name[:254], body=comment)
    db.session.add_all([dispute, message])
    row = _add_attachment(message, dispute, attachment)
    invoice.disputed = True
    try:
        db.session.flush()  # the partial unique index: a concurrent second dispute fails here
    except IntegrityError:
        db.session.rollback()
        raise Conflict("this invoice already has an open dispute", "invoice", code="already_open") from None
    events.record("dispute.opened", creditor_id=creditor.id, debtor_id=debtor.id, invoice_id=invoice.id,
                  actor="debtor", dispute_id=dispute.id, reason=reason, message_id=message.id,
                  attachment=_attachment_data(row))
    with force_locale(creditor.language):
        detail = f"{REASON_LABELS[reason]} — {_excerpt(comment)}"
    alerts.notify("dispute", creditor_id=creditor.id, debtor_id=debtor.id, numbers=[invoice.number], detail=detail)
    _commit_or_conflict()
    return dispute


def _thread_query():
    return select(Dispute).options(
        selectinload(Dispute.invoice),
        selectinload(Dispute.messages).selectinload(DisputeMessage.attachments).options(
            defer(DisputeAttachment.content)))


def debtor_thread(debtor_id: int, dispute_id: int) -> DebtorThread:
    debtor, creditor = _debtor_and_creditor(debtor_id)
    dispute = db.session.scalar(_thread_query().where(Dispute.id == dispute_id, Dispute.debtor_id == debtor_id))
    if dispute is None:
        raise NotFound("no such dispute")
    return DebtorThread(debtor, creditor, dispute.invoice, dispute, list(dispute.messages))


@atomic
def debtor_reply(debtor_id: int, dispute_id: int, *, body, upload: Upload | None = None) -> DisputeMessage:
    body = check_body(body, "message")
    attachment = read_attachment(upload)
    dispute = db.session.scalar(select(Dispute).where(Dispute.id == dispute_id, Dispute.debtor_id == debtor_id)
                                .with_for_update())
    if dispute is None:
        raise NotFound("no such dispute")
    if dispute.status != "open":
        raise Conflict("this dispute is resolved", "dispute", code="resolved")
    debtor = db.session.get(Debtor, debtor_id)
    message = DisputeMessage(dispute=dispute, author="debtor", author_name=debtor.name[:254], body=body)
    db.session.add(message)
    row = _add_attachment(message, dispute, attachment)
    db.session.flush()
    events.record("dispute.replied", creditor_id=dispute.creditor_id, debtor_id=debtor_id,
                  invoice_id=dispute.invoice_id, actor="debtor", dispute_id=dispute.id, message_id=message.id,
                  attachment=_attachment_data(row))
    number = db.session.scalar(select(Invoice.number).where(Invoice.id == dispute.invoice_id))
    alerts.notify("dispute_reply", creditor_id=dispute.creditor_id, debtor_id=debtor_id, numbers=[number],
                  detail=_excerpt(body))
    db.session.commit()
    return message


def debtor_attachment(debtor_id: int, dispute_id: int, attachment_id: int) -> DisputeAttachment:
    """An attachment of the debtor's own dispute (theirs or the creditor's), or NotFound."""
    return _attachment(dispute_id, attachment_id, "debtor", DisputeAttachment.debtor_id == debtor_id,
                       Dispute.debtor_id == debtor_id)


def _attachment(dispute_id: int, attachment_id: int, actor: str, *owned) -> DisputeAttachment:
    """The attachment, if `owned` (the reader's filters on attachment and dispute) holds; recorded."""
    row = db.session.scalar(
        select(DisputeAttachment).join(DisputeMessage, DisputeMessage.id == DisputeAttachment.message_id)
        .join(Dispute, Dispute.id == DisputeMessage.dispute_id)
        .where(DisputeAttachment.id == attachment_id, Dispute.id == dispute_id, *owned))
    if row is None:
        raise NotFound("no such attachment")
    _downloaded(row, dispute_id, actor)
    return row


# --- the creditor's side (every query filters by the creditor's id) -----------------------------

@dataclass
class QueueRow:
    dispute: Dispute
    invoice: Invoice
    debtor: Debtor
    messages: int
    #: who wrote last: "debtor" means the creditor owes a reply
    last_author: str | None


QUEUE_LIMIT = 200


def queue(creditor_id: int, status: str | None = None) -> list[QueueRow]:
    """Open disputes first (oldest first: a queue), then resolved ones (newest first)."""
    counts = (select(DisputeMessage.dispute_id, func.count().label("n"), func.max(DisputeMessage.id).label("last"))
              .group_by(DisputeMessage.dispute_id).subquery())
    last = DisputeMessage.__table__.alias("last_message")
    q = (select(Dispute, Invoice, Debtor, counts.c.n, last.c.author)
         .join(Invoice, Invoice.id == Dispute.invoice_id).join(Debtor, Debtor.id == Dispute.debtor_id)
         .outerjoin(counts, counts.c.dispute_id == Dispute.id).outerjoin(last, last.c.id == counts.c.last)
         .where(Dispute.creditor_id == creditor_id)
         .order_by(case((Dispute.status == "open", 0), else_=1),
                   case((Dispute.status == "open", Dispute.id), else_=-Dispute.id))
         .limit(QUEUE_LIMIT))
    if status in ("open", "resolved"):
        q = q.where(Dispute.status == status)
    return [QueueRow(d, i, b, n or 0, a) for d, i, b, n, a in db.session.execute(q)]


def creditor_dispute(creditor_id: int, dispute_id: int) -> Dispute:
    dispute = db.session.scalar(_thread_query().where(Dispute.id == dispute_id, Dispute.creditor_id == creditor_id))
    if dispute is None:
        raise NotFound("no such dispute")
    return dispute


@dataclass
class CreditorDetail:
    dispute: Dispute
    invoice: Invoice
    debtor: Debtor
    events: list
    last_reminder: dict | None


def creditor_detail(creditor_id: int, dispute_id: int) -> CreditorDetail:
    """The dispute with its thread, its invoice's activity and the last reminder sent for it."""
    dispute = creditor_dispute(creditor_id, dispute_id)
    debtor = db.session.get(Debtor, dispute.debtor_id)
    return CreditorDetail(dispute, dispute.invoice, debtor,
                          events.latest(creditor_id, limit=100, invoice_id=dispute.invoice_id),
                          reminders.last_sent([dispute.invoice_id]).get(dispute.invoice_id))


def _lock_for_creditor(creditor_id: int, dispute_id: int) -> tuple[Dispute, Invoice, Debtor, Creditor]:
    dispute = db.session.scalar(select(Dispute).where(Dispute.id == dispute_id, Dispute.creditor_id == creditor_id)
                                .with_for_update())
    if dispute is None:
        raise NotFound("no such dispute")
    invoice = db.session.scalar(select(Invoice).where(Invoice.id == dispute.invoice_id).with_for_update())
    return dispute, invoice, db.session.get(Debtor, dispute.debtor_id), db.session.get(Creditor, creditor_id)


@atomic
def creditor_reply(creditor_id: int, dispute_id: int, *, user: str, body, upload: Upload | None = None) -> DisputeMessage:
    """The creditor answers in the thread; the debtor gets it by e-mail with a fresh portal link."""
    body = check_body(body, "message")
    attachment = read_attachment(upload)
    dispute, invoice, debtor, creditor = _lock_for_creditor(creditor_id, dispute_id)
    if dispute.status != "open":
        raise Conflict("this dispute is resolved", "dispute", code="resolved")
    message = DisputeMessage(dispute=dispute, author="creditor", author_name=user[:254], body=body)
    db.session.add(message)
    row = _add_attachment(message, dispute, attachment)
    db.session.flush()
    events.record("dispute.replied", creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=invoice.id,
                  actor="creditor", user=user, dispute_id=dispute.id, message_id=message.id,
                  attachment=_attachment_data(row))
    email_debtor(creditor, debtor, invoice, dispute, "reply", body=body, with_attachment=row is not None)
    db.session.commit()
    return message


@atomic
def resolve(creditor_id: int, dispute_id: int, *, user: str, resolution, amount=None, note=None) -> Dispute:
    """Close the dispute. credit_note: `amount` (at most the balance) credited through the ledger,
    a full one settles the invoice; amount_corrected: `amount` is the invoice's right total (at
    least what was paid); rejected: nothing changes. Dunning resumes on what is left."""
    if resolution not in DISPUTE_RESOLUTIONS:
        raise Invalid("resolution must be one of " + ", ".join(DISPUTE_RESOLUTIONS), "resolution", code="resolution")
    note = check_body(note, "note") if isinstance(note, str) and note.strip() else None
    dispute, invoice, debtor, creditor = _lock_for_creditor(creditor_id, dispute_id)
    if dispute.status != "open":
        raise Conflict("this dispute is resolved already", "dispute", code="resolved")
    blank = amount is None or (isinstance(amount, str) and not amount.strip())
    data = {"resolution": resolution, "currency": invoice.currency, "invoice_amount_before": invoice.amount,
            "balance_before": invoice.balance}
    adjustment = None
    if resolution == "rejected":
        if not blank:
            raise Invalid("a rejection takes no amount", "amount", code="amount_unexpected")
    else:
        if blank:
            raise Invalid("amount is required", "amount", code="amount_required")
        value = amount_of(amount.strip() if isinstance(amount, str) else amount, invoice.currency)
        if resolution == "credit_note":
            if invoice.status not in OPEN_STATUSES or value > invoice.balance:
                raise Invalid("a credit note cannot exceed the invoice's balance", "amount", code="amount_over_balance")
            ledger.record_payment(creditor_id, debtor.id, provider="credit_note", reference=f"dispute-{dispute.id}",
                                  amount=value, currency=invoice.currency, received_on=today_for(creditor),
                                  invoice_ids=[invoice.id], actor="creditor", commit=False)
            adjustment = value
            thanked = db.session.scalar(select(Reminder.id).where(Reminder.invoice_id == invoice.id,
                                                                  Reminder.step_code == "thank_you"))
            if invoice.status == "paid" and thanked is None:
                # Settled by the credit, not by money: no "we have received your payment" note.
                # The planner sends a thank-you once per invoice (unique invoice, step): this row
                # records it as not due, as the composer does for debtors without e-mail.
                db.session.add(Reminder(creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=invoice.id,
                                        step_code="thank_you", position=0, dunning_date=today_for(creditor),
                                        status="cancelled", decided_at=utcnow()))
                data["thank_you"] = "not_due"
        else:  # amount_corrected
            if value < invoice.amount_paid:
                raise Invalid("the corrected amount cannot be below what was already paid", "amount",
                              code="amount_below_paid")
            if value == invoice.amount:
                raise Invalid("the corrected amount is the invoice's amount already", "amount", code="amount_same")
            before = {"amount": invoice.amount, "status": invoice.status}
            adjustment = invoice.amount - value
            invoice.amount = value
            invoice.status = status_for(invoice.amount, invoice.amount_paid, invoice.status == "cancelled")
            events.record("invoice.updated", creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=invoice.id,
                          actor="creditor", user=user, fields=sorted(k for k, v in before.items()
                                                                     if getattr(invoice, k) != v),
                          amount_before=before["amount"], amount=invoice.amount, dispute_id=dispute.id)
            if invoice.status == "paid" and before["status"] != "paid":
                events.record("invoice.paid", creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=invoice.id,
                              actor="system")
    dispute.status, dispute.resolution, dispute.adjustment = "resolved", resolution, adjustment
    dispute.resolved_at = utcnow()
    invoice.disputed = False
    if note:
        db.session.add(DisputeMessage(dispute=dispute, author="creditor", author_name=user[:254], body=note))
    db.session.flush()
    events.record("dispute.resolved", creditor_id=creditor_id, debtor_id=debtor.id, invoice_id=invoice.id,
                  actor="creditor", user=user, dispute_id=dispute.id, adjustment=adjustment,
                  invoice_amount=invoice.amount, balance=invoice.balance, status=invoice.status,
                  dunning="ended" if invoice.status not in OPEN_STATUSES else "resumed", note=note is not None, **data)
    email_debtor(creditor, debtor, invoice, dispute, "resolved", body=note)
    db.session.commit()
    return dispute


def creditor_attachment(creditor_id: int, dispute_id: int, attachment_id: int) -> DisputeAttachment:
    return _attachment(dispute_id, attachment_id, "creditor", DisputeAttachment.creditor_id == creditor_id,
                       Dispute.creditor_id == creditor_id)


# --- helpers -------------------------------------------------------------------------------------

def _attachment_data(row: DisputeAttachment | None) -> dict | None:
    if row is None:
        return None
    return {"filename": row.filename, "content_type": row.content_type, "size": row.size, "sha256": row.sha256}


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


def _downloaded(row: DisputeAttachment, dispute_id: int, actor: str) -> None:
    invoice_id = db.session.scalar(select(Dispute.invoice_id).where(Dispute.id == dispute_id))
    events.record("attachment.downloaded", creditor_id=row.creditor_id, debtor_id=row.debtor_id,
                  invoice_id=invoice_id, actor=actor, dispute_id=dispute_id, attachment_id=row.id,
                  filename=row.filename)
    db.session.commit()
