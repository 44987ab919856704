"""Tasks for the creditor's users: a call to make when the dunning run reaches a `call` step
(CONTRACT §9, §4 /tasks), room left for other kinds."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .parties import CreditorUser, Debtor

TASK_KINDS = ("call",)
TASK_STATUSES = ("open", "done")
#: how a call ended; each closes the task and counts as the step sent for the ladder
CALL_OUTCOMES = ("reached", "promise", "no_answer", "wrong_number")


class Task(db.Model):
    """One to-do for the creditor's users. A call task gathers the debtor's invoices that reached a
    call step on one day: unique (debtor, kind, due), so concurrent dunning runs make it once."""
    __tablename__ = "task"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"))
    kind: Mapped[str] = mapped_column(String(16), default="call")
    #: the step that asked for it (its code), NULL for a task made by hand
    step_code: Mapped[str | None] = mapped_column(String(32))
    #: the dunning day it was made for (creditor's calendar)
    due: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="open")
    #: the collector in charge when it was made (the debtor's owner), else anyone's
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("creditor_user.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the user who recorded the outcome; NULL when it came through the API
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("creditor_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    debtor: Mapped[Debtor] = relationship()
    assigned_to: Mapped[CreditorUser | None] = relationship(foreign_keys=[assigned_to_id])
    items: Mapped[list[TaskInvoice]] = relationship(back_populates="task", cascade="all, delete-orphan")

    __table_args__ = (
        UniqueConstraint("debtor_id", "kind", "due"),
        CheckConstraint("kind IN ('call')", name="kind"),
        CheckConstraint("status IN ('open', 'done')", name="status"),
        CheckConstraint("outcome IS NULL OR outcome IN ('reached', 'promise', 'no_answer', 'wrong_number')",
                        name="outcome"),
        CheckConstraint("(status = 'done') = (closed_at IS NOT NULL)", name="closed"),
        Index("ix_task_creditor_status", "creditor_id", "status"),
    )


class TaskInvoice(db.Model):
    """An invoice a task is about, with the reminder (a call step's) that its closing records sent."""
    __tablename__ = "task_invoice"
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), primary_key=True)
    reminder_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("reminder.id"), unique=True)

    task: Mapped[Task] = relationship(back_populates="items")
