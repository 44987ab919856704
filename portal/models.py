"""SQLAlchemy models. Uniqueness constraints carry the idempotency (DESIGN: invariants).

Amounts are integer minor units (BigInteger); times are UTC; dates are calendar dates.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from flask_login import UserMixin
from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Date, DateTime, ForeignKey,
                        ForeignKeyConstraint, Index, Integer, LargeBinary, String, Text, UniqueConstraint, false,
                        text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(db.TypeDecorator):
    """Stored as UTC; always read back timezone-aware (SQLite forgets the zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Creditor(db.Model):
    """A tenant: the business whose invoices are chased."""
    id: Mapped[int] = mapped_column(primary_key=True)
    #: trading name shown to debtors
    name: Mapped[str] = mapped_column(String(200))
    #: contact address shown in the portal and used as reply-to
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    #: IANA zone: dunning dates are calendar dates there
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    language: Mapped[str] = mapped_column(String(2), default="fr")
    #: legal identity printed on documents
    legal_name: Mapped[str | None] = mapped_column(String(200))
    registration_number: Mapped[str | None] = mapped_column(String(40))  # SIREN / company number
    vat_number: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    #: bank-transfer details shown to debtors
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30)
    #: contractual late-payment rate in basis points; NULL = ECB rate + 10 points (L441-10)
    late_interest_bp: Mapped[int | None] = mapped_column(Integer)
    #: days given to pay in a formal notice ("mise en demeure")
    formal_notice_days: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    #: time of the daily dunning run in the creditor's time zone, "HH:MM"
    dunning_time: Mapped[str] = mapped_column(String(5), default="08:30", server_default="08:30")
    #: smallest part of one invoice a debtor may pay in the portal (minor units); NULL = whole invoices only
    partial_payment_min: Mapped[int | None] = mapped_column(BigInteger)
    #: how far ahead a debtor may promise to pay, in days from the day of the promise
    promise_max_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("payment_terms_days >= 0 AND payment_terms_days <= 365", name="terms_range"),
    )


class CreditorUser(UserMixin, db.Model):
    __tablename__ = "creditor_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    #: werkzeug scrypt hash, never the password
    password_hash: Mapped[str] = mapped_column(String(255))
    #: e-mails about new disputes, broken promises, chargebacks: "immediate" or "digest" (one a day)
    notify: Mapped[str] = mapped_column(String(10), default="immediate", server_default="immediate")
    #: the last day a digest went to this user
    last_digest_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    creditor: Mapped[Creditor] = relationship()


class ApiKey(db.Model):
    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"), index=True)
    #: first characters of the key, shown so the creditor can tell keys apart
    prefix: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of the whole key: keys are long random strings, so a fast hash is enough
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Debtor(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    #: the creditor's own customer reference
    ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2), default="fr")
    #: dunning profile: standard, key_account, risky, public_sector...
    profile: Mapped[str] = mapped_column(String(32), default="standard")
    #: business or consumer: late-payment charges apply to businesses only
    kind: Mapped[str] = mapped_column(String(10), default="business")
    #: collect open invoices through the active mandate on their due date (set by the creditor)
    auto_collect: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    creditor: Mapped[Creditor] = relationship()

    __table_args__ = (
        UniqueConstraint("creditor_id", "ref"),
        CheckConstraint("language IN ('fr', 'en')", name="language"),
        CheckConstraint("kind IN ('business', 'consumer')", name="kind"),
    )


INVOICE_STATUSES = ("open", "partially_paid", "paid", "cancelled")
#: an invoice that still has a balance to collect (Python and SQL: `Invoice.status.in_(OPEN_STATUSES)`)
OPEN_STATUSES = ("open", "partially_paid")


class Invoice(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    #: total in minor units
    amount: Mapped[int] = mapped_column(BigInteger)
    #: sum of allocations, kept in step by the ledger service in the same transaction
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    #: derived from amount_paid by the ledger (open -> partially_paid -> paid), or cancelled
    status: Mapped[str] = mapped_column(String(16), default="open")
    disputed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    debtor: Mapped[Debtor] = relationship()

    __table_args__ = (
        UniqueConstraint("creditor_id", "number"),
        # The key a reminder's composite foreign key refers to (its creditor and debtor are its
        # invoice's, by constraint); id alone is already unique.
        UniqueConstraint("id", "creditor_id", "debtor_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_paid >= 0 AND amount_paid <= amount", name="paid_range"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        CheckConstraint("status IN ('open', 'partially_paid', 'paid', 'cancelled')", name="status"),
        Index("ix_invoice_creditor_status_due", "creditor_id", "status", "due_date"),
    )

    @property
    def balance(self) -> int:
        return 0 if self.status == "cancelled" else self.amount - self.amount_paid


class Document(db.Model):
    """A PDF belonging to one invoice: uploaded through the API or generated."""
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    #: uploaded by the creditor, or generated by Relance from the invoice data
    source: Mapped[str] = mapped_column(String(10), default="uploaded")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
    #: refunded, charged back or failed after it was received: the sum of its reversals
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    allocations: Mapped[list[PaymentAllocation]] = relationship(back_populates="payment")

    __table_args__ = (
        # Idempotency: one row per (creditor, provider, reference), whoever retries.
        UniqueConstraint("creditor_id", "provider", "reference"),
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

    attempt: Mapped[PaymentAttempt] = relationship(back_populates="lines")
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        UniqueConstraint("attempt_id", "invoice_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
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


class PortalLink(db.Model):
    """One issued magic link. The signed token names this row; revoking it ends its sessions."""
    __tablename__ = "portal_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: random value inside the token, so a token cannot be forged from a row id
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    #: invoices to preselect when the link came with a reminder
    invoice_numbers: Mapped[list | None] = mapped_column(JSON)
    #: who issued it: api, creditor, cli, reminder
    issued_by: Mapped[str] = mapped_column(String(16), default="creditor")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_count: Mapped[int] = mapped_column(Integer, default=0)

    debtor: Mapped[Debtor] = relationship()


class Event(db.Model):
    """Append-only activity log: the feed, the audit trail and GET /api/v1/events."""
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("debtor.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"))
    #: dotted name: portal.opened, invoice.created, payment.received...
    type: Mapped[str] = mapped_column(String(64))
    #: debtor, creditor, api, system
    actor: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON, default=dict)

    debtor: Mapped[Debtor | None] = relationship()
    invoice: Mapped[Invoice | None] = relationship()

    __table_args__ = (
        Index("ix_event_creditor_id", "creditor_id", "id"),
        Index("ix_event_debtor_id", "debtor_id", "id"),
    )


# --- dunning -------------------------------------------------------------------------------

class DunningPlan(db.Model):
    """The ordered steps used for the debtors of one profile."""
    __tablename__ = "dunning_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    #: debtor profile this plan serves: standard, key_account, risky, public_sector
    profile: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))

    steps: Mapped[list[DunningStep]] = relationship(order_by="DunningStep.position", back_populates="plan",
                                                    cascade="all, delete-orphan")

    __table_args__ = (UniqueConstraint("creditor_id", "profile"),)


STEP_TONES = ("courtesy", "reminder", "firm", "formal")


class DunningStep(db.Model):
    __tablename__ = "dunning_step"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("dunning_plan.id"))
    #: stable name of the step within its plan: courtesy, reminder_1, firm, formal_notice...
    code: Mapped[str] = mapped_column(String(32))
    #: order of firmness; a later position is never followed by an earlier one
    position: Mapped[int] = mapped_column(Integer)
    #: days from the due date; negative = before it (courtesy notice, "prévenance")
    offset_days: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    tone: Mapped[str] = mapped_column(String(16))
    #: waits in the creditor's approval list before it goes
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    #: states late-payment interest and the recovery indemnity (business debtors only)
    adds_charges: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_fr: Mapped[str] = mapped_column(String(200))
    subject_en: Mapped[str] = mapped_column(String(200))
    #: the opening paragraph; the invoice table, total, link and bank details are added around it
    body_fr: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str] = mapped_column(Text)

    plan: Mapped[DunningPlan] = relationship(back_populates="steps")

    __table_args__ = (
        UniqueConstraint("plan_id", "code"),
        CheckConstraint("offset_days BETWEEN -90 AND 365", name="offset_range"),
        CheckConstraint("channel IN ('email', 'letter')", name="channel"),
        CheckConstraint("tone IN ('courtesy', 'reminder', 'firm', 'formal')", name="tone"),
    )


REMINDER_STATUSES = ("planned", "awaiting_approval", "sent", "skipped", "failed", "cancelled")


class Reminder(db.Model):
    """One dunning step (or thank-you) for one invoice. Unique per (invoice, step): the
    database, not luck, guarantees that concurrent planners never plan it twice.

    Its creditor and debtor are its invoice's, by one composite foreign key (invoice_id,
    creditor_id, debtor_id) -> invoice (which refers to creditor and debtor itself): a reminder
    cannot name another debtor than its invoice's, and inserting one costs one key check
    instead of three. An invoice moved to another debtor (ledger._put_invoice allows it while
    nothing is paid) takes its reminders along (ON UPDATE CASCADE): a planned one then goes to
    the invoice's new debtor, not to the old one."""
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(Integer)
    debtor_id: Mapped[int] = mapped_column(Integer)
    invoice_id: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_step.id"))
    #: the step's code, or thank_you
    step_code: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    #: the calendar day (creditor's time zone) it was planned for
    dunning_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))
    #: charges stated in the message, frozen at planning time
    interest: Mapped[int] = mapped_column(BigInteger, default=0)
    indemnity: Mapped[int] = mapped_column(BigInteger, default=0)
    #: a postponed approval comes back on this day
    postponed_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    step: Mapped[DunningStep | None] = relationship()
    invoice: Mapped[Invoice] = relationship()

    __table_args__ = (
        ForeignKeyConstraint(["invoice_id", "creditor_id", "debtor_id"],
                             ["invoice.id", "invoice.creditor_id", "invoice.debtor_id"], onupdate="CASCADE"),
        # The planner's probe ("a reminder at this position or beyond?") reads this index alone
        # on PostgreSQL, which stores the position in it too (INCLUDE; SQLite has no such thing).
        UniqueConstraint("invoice_id", "step_code", postgresql_include=["position"]),
        CheckConstraint("status IN ('planned', 'awaiting_approval', 'sent', 'skipped', 'failed', 'cancelled')",
                        name="status"),
        Index("ix_reminder_creditor_status", "creditor_id", "status"),
        Index("ix_reminder_message_id", "message_id"),
        Index("ix_reminder_debtor_id", "debtor_id", "status"),
    )


class OutboxMessage(db.Model):
    """A rendered message, written in the same transaction as the reminders it carries and
    sent after commit. Email or letter (a PDF to print and post)."""
    __tablename__ = "outbox_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: reminder, formal_notice, thank_you
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(10), default="email")
    #: "<debtor id>:<date>" for a daily reminder e-mail, else NULL: one reminder e-mail a day, by constraint
    daily_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    to_addr: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    #: the e-mail as sent (RFC 5322 bytes), built once when composed so every attempt sends the
    #: same bytes and the sender does no MIME work; NULL: built from the columns above at send time
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: RFC 5322 Message-ID, fixed at creation: a retried send carries the same one
    message_id_header: Mapped[str] = mapped_column(String(200), unique=True)
    #: pending -> sent | failed; letters wait as "letter" until printed
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'letter')", name="status"),
        Index("ix_outbox_message_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_message_creditor_id", "creditor_id", "id"),  # the back office's outbox list
    )


class OutboxHandover(db.Model):
    """A message handed to the SMTP server, committed just before its final dot: the durable
    "sent" that makes a crash lose nothing and send nothing twice, one small insert while the
    server waits. The message itself (status, sent_at, its reminders and events) is recorded sent
    right after, off the critical path, in the same transaction that deletes this row; a row left
    by a crashed sender is recorded by the next run. Refused at the dot: the row is deleted.
    No foreign key: its check would take a share lock on the message row, which the sender's
    claim holds locked, making a multixact on every send; a row is only written, guarded, for a
    claimed message, and messages are never deleted."""
    __tablename__ = "outbox_handover"
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    handed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferenceRate(db.Model):
    """ECB main refinancing rate in force on 1 January / 1 July (L441-10): a dated table the
    creditor can extend; interest for a half-year uses the rate in force on its first day."""
    __tablename__ = "reference_rate"
    id: Mapped[int] = mapped_column(primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    #: in basis points (hundredths of a percent): 2.15 % -> 215
    rate_bp: Mapped[int] = mapped_column(Integer)


class DunningDay(db.Model):
    """A creditor's dunning day that has been run: the scheduler runs each day once."""
    __tablename__ = "dunning_day"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    dunning_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("creditor_id", "dunning_date"),)
