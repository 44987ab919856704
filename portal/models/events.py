"""The debtor's way in (portal links) and the append-only activity log (events)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow
from .invoices import Invoice
from .parties import Debtor


class PortalLink(db.Model):
    """One issued magic link. The signed token carries this row's nonce; revoking it ends its sessions."""
    __tablename__ = "portal_link"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: random value inside the signed token, which finds the row by it
    nonce: Mapped[str] = mapped_column(String(32), unique=True)
    #: invoices to preselect when the link came with a reminder
    invoice_numbers: Mapped[list | None] = mapped_column(JSON)
    #: the message it was sent in: the portal shows that message's amount, deadline and invoices
    message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"))
    #: short random code resolving under /l/ (printed letters); NULL: the signed token only
    short_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    #: who issued it: api, creditor, cli, reminder
    issued_by: Mapped[str] = mapped_column(String(16), default="creditor")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_count: Mapped[int] = mapped_column(Integer, default=0)

    debtor: Mapped[Debtor] = relationship()


class PortalSession(db.Model):
    """One portal session, started by opening a link. The session cookie names this row: a
    sign-out ends it on the server, so a copy of the cookie is worth nothing afterwards either;
    revoking its link ends it too."""
    __tablename__ = "portal_session"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("portal_link.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: set by the debtor's sign-out; the session is over from then on
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    link: Mapped[PortalLink] = relationship()


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
