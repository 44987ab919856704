"""Dunning: plans and their steps, reminders, the outbox that carries them, the reference rate for
late-payment interest, and the days already run."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        LargeBinary, String, Text, UniqueConstraint, false)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .invoices import Invoice


class DunningPlan(db.Model):
    """The ordered steps used for the debtors of one profile."""
    __tablename__ = "dunning_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    #: debtor profile this plan serves: standard, key_account, risky, public_sector
    profile: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))

    #: the live steps only: a step removed while reminders refer to it is kept, retired (plan_steps.py)
    steps: Mapped[list[DunningStep]] = relationship(
        order_by="DunningStep.position", back_populates="plan", cascade="all, delete-orphan",
        primaryjoin="and_(DunningPlan.id == DunningStep.plan_id, DunningStep.retired_at.is_(None))")

    __table_args__ = (UniqueConstraint("creditor_id", "profile"),)


STEP_TONES = ("courtesy", "reminder", "firm", "formal")
#: CONTRACT §9: a call step makes a task for the creditor's users; sms goes by e-mail until SMS is set up
STEP_CHANNELS = ("email", "sms", "letter", "call")


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
    #: removed from its plan while reminders refer to it: kept for their history, never planned again
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[DunningPlan] = relationship(back_populates="steps")

    __table_args__ = (
        UniqueConstraint("plan_id", "code"),
        CheckConstraint("offset_days BETWEEN -90 AND 365", name="offset_range"),
        CheckConstraint("channel IN ('email', 'sms', 'letter', 'call')", name="channel"),
        CheckConstraint("tone IN ('courtesy', 'reminder', 'firm', 'formal')", name="tone"),
    )


#: awaiting_call: a call step's reminder, in an open call task (models/tasks.py) until its outcome
REMINDER_STATUSES = ("planned", "awaiting_approval", "awaiting_call", "sent", "skipped", "failed", "cancelled")


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
    #: its rung on the ladder (1 = first after-due step); NULL before the due date and for thank-yous
    rung: Mapped[int | None] = mapped_column(Integer)
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
        CheckConstraint("status IN ('planned', 'awaiting_approval', 'awaiting_call', 'sent', 'skipped', 'failed', "
                        "'cancelled')",
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
    #: a letter for the print queue as composed (HTML): its PDF (letters.pdf_of) is made from it
    #: when it is printed, since WeasyPrint takes longer than all the rest of a message
    letter_html: Mapped[str | None] = mapped_column(Text)
    #: the one amount the message asks for (balances + charges it claims), its currency, the
    #: payment reference it quotes and the deadline it gives: the portal banner shows the same
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    payment_reference: Mapped[str | None] = mapped_column(String(25))
    deadline: Mapped[date | None] = mapped_column(Date)
    #: how a formal notice leaves, chosen at approval: email, letter, registered (with acknowledgement)
    delivery: Mapped[str | None] = mapped_column(String(12))
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
    #: a letter posted (services/letters.mark_posted): when, by which user, how, La Poste's number
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_by: Mapped[str | None] = mapped_column(String(254))
    postage: Mapped[str | None] = mapped_column(String(10))  # ordinary | registered (with AR)
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    #: an SMS: the provider's id of the message (Twilio's SID) once it took it, and the last
    #: delivery status its callbacks reported (queued, sent, delivered, undelivered, failed)
    provider_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'letter')", name="status"),
        CheckConstraint("postage IN ('ordinary', 'registered')", name="postage"),
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
    operator keeps (`flask rates set`), read by every creditor; interest for a half-year uses the
    rate in force on its first day."""
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
    #: the day's sending waits for a person (the creditor's hold setting) until released_at
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (UniqueConstraint("creditor_id", "dunning_date"),)
