"""The credit controller's own records on a debtor: pauses of its dunning and notes shared with
colleagues."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .parties import CreditorUser


class DunningPause(db.Model):
    """Dunning held by a person for a debtor (invoice_id NULL) or one of its invoices, with a
    reason, through `until` (creditor's calendar day, included). Ended early by a resume
    (`ended_at`); kept afterwards as the record of why nothing was sent."""
    __tablename__ = "dunning_pause"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"))
    reason: Mapped[str] = mapped_column(String(200))
    until: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (Index("ix_dunning_pause_debtor_id", "debtor_id", "until"),)


class DebtorNote(db.Model):
    """A note on a debtor by one of the creditor's users; the colleagues it mentions (@e-mail
    local part) are e-mailed."""
    __tablename__ = "debtor_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("creditor_user.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    #: ids of the users mentioned
    mentions: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[CreditorUser | None] = relationship()

    __table_args__ = (Index("ix_debtor_note_debtor_id", "debtor_id", "id"),)
