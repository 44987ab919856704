"""Money in and out: payments and what they paid, reversals, payment attempts, mandates, and the
provider events applied once."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint,
                        text, true)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .invoices import Invoice


class Payment(db.Model):
    """Money received from a debtor, by any path; its allocations say what it paid."""
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: offline (bank transfer seen in the accounts), stripe, gocardless
    provider: Mapped[str] = mapped_column(String(16))
    #: the creditor's reference (offline) or the provider's payment id
    reference: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    received_on: Mapped[date] = mapped_column(Date)
    #: a bank payment (recorded from a statement line) that the creditor then posted through the
    #: API with this reference: posting it again finds this payment, never a second one
    posted_reference: Mapped[str | None] = mapped_column(String(255))
    #: refunded, charged back or failed after it was received: the sum of its reversals
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    allocations: Mapped[list[PaymentAllocation]] = relationship(back_populates="payment")

    __table_args__ = (
        # Idempotency: one row per (creditor, provider, reference), whoever retries.
        UniqueConstraint("creditor_id", "provider", "reference"),
        UniqueConstraint("creditor_id", "posted_reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reversed_amount >= 0 AND reversed_amount <= amount", name="reversed_range"),
    )


class PaymentAllocation(db.Model):
    __tablename__ = "payment_allocation"
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    #: the part of it taken back by a refund or chargeback: the invoice reopens by that much
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    payment: Mapped[Payment] = relationship(back_populates="allocations")
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        UniqueConstraint("payment_id", "invoice_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("reversed_amount >= 0 AND reversed_amount <= amount", name="reversed_range"),
    )


class PaymentReversal(db.Model):
    """Money taken back after it was received: a refund, a card chargeback, a direct debit that
    failed or was charged back. Unique per provider reference, so a replayed webhook reverses once."""
    __tablename__ = "payment_reversal"
    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    #: refund, chargeback, failed
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    #: the provider's refund / dispute id, or "<payment id>:<status>" for a direct debit
    reference: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind IN ('refund', 'chargeback', 'failed')", name="kind"),
    )


#: created (checkout opened) -> processing (money in flight) -> failed | expired | succeeded. A status
#: only moves to a higher rank, so an event arriving late never moves an attempt backwards; money
#: received wins over an earlier failure (a retried direct debit), and money taken back after
#: success is a reversal, not a status.
ATTEMPT_RANK = {"created": 0, "processing": 1, "failed": 2, "expired": 2, "succeeded": 3}
#: an attempt in these statuses may still bring money: at most one per invoice (PaymentAttemptLine.in_flight)
IN_FLIGHT_STATUSES = ("created", "processing")


class PaymentAttempt(db.Model):
    """A payment the debtor started in the portal (card checkout) or that Relance asked for
    through a mandate (direct debit), for chosen invoices and amounts computed from the ledger."""
    __tablename__ = "payment_attempt"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: stripe (card) or gocardless (direct debit)
    provider: Mapped[str] = mapped_column(String(16))
    #: the Checkout Session id (cs_...) or the GoCardless payment id (PM...), once created there
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="created")
    #: debtor (portal) or system (automatic collection on the due date)
    initiated_by: Mapped[str] = mapped_column(String(10), default="debtor")
    #: the ledger payment once the money is confirmed
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[PaymentAttemptLine]] = relationship(back_populates="attempt", order_by="PaymentAttemptLine.id")

    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('created', 'processing', 'succeeded', 'failed', 'expired')", name="status"),
    )


class PaymentAttemptLine(db.Model):
    __tablename__ = "payment_attempt_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempt.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    #: the attempt's status is one of IN_FLIGHT_STATUSES (written with the line, cleared when the
    #: attempt ends, never set again): the database keeps one attempt in flight per invoice
    in_flight: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    attempt: Mapped[PaymentAttempt] = relationship(back_populates="lines")
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        UniqueConstraint("attempt_id", "invoice_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # Whatever the method (card checkout, direct debit), whoever starts it, however many at once.
        Index("uq_payment_attempt_line_in_flight", "invoice_id", unique=True,
              postgresql_where=text("in_flight"), sqlite_where=text("in_flight")),
    )


#: GoCardless mandate statuses in the order they move; the last group are all final.
MANDATE_RANK = {"requested": 0, "pending_customer_approval": 1, "pending_submission": 2, "submitted": 3,
                "active": 4, "cancelled": 5, "failed": 5, "expired": 5, "blocked": 5, "consumed": 5,
                "suspended_by_payer": 5}


#: statuses against which GoCardless accepts payments (before it is active too)
MANDATE_USABLE = ("pending_submission", "submitted", "active")


class Mandate(db.Model):
    """A SEPA Direct Debit mandate set up through a GoCardless Billing Request."""
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16), default="gocardless")
    billing_request_ref: Mapped[str] = mapped_column(String(64), unique=True)
    #: MD... once the debtor has authorised it
    mandate_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: requested (flow opened), then the provider's status: pending_submission, submitted, active, cancelled...
    status: Mapped[str] = mapped_column(String(32), default="requested")
    bank_name: Mapped[str | None] = mapped_column(String(100))
    account_ending: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def usable(self) -> bool:
        """Payments can be created against it (GoCardless accepts them before it is active)."""
        return self.status in MANDATE_USABLE


class WebhookEvent(db.Model):
    """Every provider event applied, once: unique (provider, event id) is what makes a
    redelivered or concurrently delivered event a no-op."""
    __tablename__ = "webhook_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: what was done with it: applied, ignored (not ours or not a type we act on)
    outcome: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("provider", "event_id"),)
