"""The parties: the creditor (a tenant), its users and API keys, and its debtors."""
from __future__ import annotations

from datetime import date, datetime

from flask_login import UserMixin
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint,
                        false)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


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
    #: hold each dunning day's sending until a person releases it (offered after an import)
    hold_dunning: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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
    #: moved on by a sign-out and a new password: every back-office session (and every copy of its
    #: cookie) made under an earlier value is over
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    creditor: Mapped[Creditor] = relationship()

    def get_id(self) -> str:
        """What flask-login keeps in the session cookie: the id and the session generation."""
        return f"{self.id}:{self.session_generation}"


class CreditorMembership(db.Model):
    """A user's access to a creditor: the entities of a group share their users. A user's own
    `creditor_id` is the creditor it signs in to first; every creditor it may switch to has a row
    here (its own included)."""
    __tablename__ = "creditor_membership"
    user_id: Mapped[int] = mapped_column(ForeignKey("creditor_user.id", ondelete="CASCADE"), primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"), primary_key=True, index=True)
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
    #: business, public (body) or consumer: the legal basis of reminders and charges follows it
    kind: Mapped[str] = mapped_column(String(10), default="business")
    #: postal address for letters: at most 6 lines of 38 characters (NF Z10-011), "\n"-separated
    address: Mapped[str | None] = mapped_column(Text)
    #: collect open invoices through the active mandate on their due date (set by the creditor)
    auto_collect: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: the accounts-payable contact (name, role, direct line...) as the collector notes it; free text
    ap_contact: Mapped[str | None] = mapped_column(Text)
    #: the debtor's number said STOP (or ARRET) to our sender, or it opted out in the portal: no SMS
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: the collector in charge: the creditor's user who gets this debtor's call tasks
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("creditor_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    creditor: Mapped[Creditor] = relationship()

    __table_args__ = (
        UniqueConstraint("creditor_id", "ref"),
        CheckConstraint("language IN ('fr', 'en')", name="language"),
        CheckConstraint("kind IN ('business', 'public', 'consumer')", name="kind"),
    )
