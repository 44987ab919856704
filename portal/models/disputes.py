"""What holds an invoice's dunning: a debtor's dispute (with its thread and attachments) or
promise to pay."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .invoices import Invoice


DISPUTE_REASONS = ("not_received", "wrong_amount", "goods_or_service", "already_paid", "other")
DISPUTE_RESOLUTIONS = ("credit_note", "amount_corrected", "rejected")


class Dispute(db.Model):
    """A debtor's objection to one invoice. While open, that invoice is not reminded; one open
    dispute per invoice (a partial unique index)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    #: open -> resolved
    status: Mapped[str] = mapped_column(String(10), default="open")
    #: credit_note (accepted, a credit note for `adjustment`), amount_corrected (the invoice now
    #: says the right amount), rejected (dunning resumes)
    resolution: Mapped[str | None] = mapped_column(String(20))
    #: minor units credited or taken off the invoice by the resolution
    adjustment: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()
    messages: Mapped[list[DisputeMessage]] = relationship(back_populates="dispute", order_by="DisputeMessage.id")

    __table_args__ = (
        CheckConstraint("reason IN ('not_received', 'wrong_amount', 'goods_or_service', 'already_paid', 'other')",
                        name="reason"),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        CheckConstraint("resolution IS NULL OR resolution IN ('credit_note', 'amount_corrected', 'rejected')",
                        name="resolution"),
        Index("uq_dispute_open_invoice", "invoice_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )


class DisputeMessage(db.Model):
    """One message of a dispute's thread: the debtor's comment, the creditor's replies."""
    __tablename__ = "dispute_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("dispute.id"), index=True)
    #: debtor or creditor
    author: Mapped[str] = mapped_column(String(10))
    #: the creditor user's e-mail, or the debtor's name, as shown in the thread
    author_name: Mapped[str] = mapped_column(String(254))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dispute: Mapped[Dispute] = relationship(back_populates="messages")
    attachments: Mapped[list[DisputeAttachment]] = relationship(back_populates="message")

    __table_args__ = (CheckConstraint("author IN ('debtor', 'creditor')", name="author"),)


class DisputeAttachment(db.Model):
    """A PDF or image sent with a dispute message, stored in the database (never on a path a
    file name could choose) and served only to that debtor and the creditor."""
    __tablename__ = "dispute_attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("dispute_message.id"), index=True)
    #: the uploaded name reduced to a safe one, for Content-Disposition only
    filename: Mapped[str] = mapped_column(String(120))
    #: sniffed from the content, not taken from the upload: application/pdf, image/png, image/jpeg
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[DisputeMessage] = relationship(back_populates="attachments")


PROMISE_STATUSES = ("live", "kept", "broken", "cancelled")


class PaymentPromise(db.Model):
    """A debtor's promise to pay one invoice by a date (and optionally an amount). While live,
    the invoice is not reminded; kept when the invoice is paid (or the amount reached) by then,
    broken the day after otherwise. One live promise per invoice."""
    __tablename__ = "payment_promise"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    #: calendar date in the creditor's time zone
    promised_date: Mapped[date] = mapped_column(Date)
    #: minor units promised; NULL = the whole balance
    amount: Mapped[int | None] = mapped_column(BigInteger)
    #: the invoice's amount_paid when the promise was made: what was paid since counts towards it
    paid_before: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="live")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('live', 'kept', 'broken', 'cancelled')", name="status"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        Index("uq_payment_promise_live_invoice", "invoice_id", unique=True,
              postgresql_where=text("status = 'live'"), sqlite_where=text("status = 'live'")),
    )
