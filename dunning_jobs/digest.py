"""The daily digest of notices, for the creditor users who chose it (CreditorUser.notify ==
"digest"; the others got each notice as it happened, from portal.services.alerts.notify).

Read from the event log only — no second record of the notices: the digest of day D lists the
notice-worthy events of the creditor from the start of the user's last digest day (or, for a
first digest, of the day before D) up to the start of D, in the creditor's time zone, and never
from before the moment the user chose the digest (their `creditor_user.notify_changed` event),
since what came before was e-mailed to them already. Once per user per day: `last_digest_on`
moves to D in the same transaction as the message, by a conditional UPDATE, and the message's
`daily_key` ("digest:<user id>:<D>") is unique in the database.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.domain.calendar import day_start
from portal.extensions import db
from portal.models import Creditor, CreditorUser, Debtor, Event, Invoice, OutboxMessage, utcnow

#: what a digest lists (payment.failed only for direct debits: a failed card attempt is the
#: debtor's business, a failed direct debit is money the creditor was counting on; of the
#: messages in a dispute, the debtor's)
NOTICE_TYPES = ("dispute.opened", "promise.broken", "payment.charged_back", "payment.refunded", "payment.reversed",
                "payment.overpaid")


def _notice_filter():
    return or_(Event.type.in_(NOTICE_TYPES),
               and_(Event.type == "dispute.replied", Event.actor == "debtor"),
               and_(Event.type == "payment.failed", Event.data["provider"].as_string() == "gocardless"))


def _chose_digest_at(user: CreditorUser) -> datetime | None:
    return db.session.scalar(
        select(Event.at).where(Event.creditor_id == user.creditor_id, Event.type == "creditor_user.notify_changed",
                               Event.data["user_id"].as_integer() == user.id,
                               Event.data["notify"].as_string() == "digest")
        .order_by(Event.id.desc()).limit(1))


def window(user: CreditorUser, creditor: Creditor, day: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the events the user's digest of `day` lists."""
    end = day_start(day, creditor.timezone)
    chosen = _chose_digest_at(user)
    if user.last_digest_on is not None:
        start = day_start(user.last_digest_on, creditor.timezone)
    elif chosen is not None:
        start = chosen
    else:
        start = day_start(day - timedelta(days=1), creditor.timezone)
    if chosen is not None and chosen > start:
        start = chosen
    return start, end


def notices(creditor: Creditor, start: datetime, end: datetime):
    """The notice-worthy events in [start, end), oldest first, with the debtor and invoice number."""
    return db.session.execute(
        select(Event, Debtor, Invoice.number)
        .join(Debtor, Debtor.id == Event.debtor_id)
        .outerjoin(Invoice, Invoice.id == Event.invoice_id)
        .where(Event.creditor_id == creditor.id, _notice_filter(), Event.at >= start, Event.at < end)
        .order_by(Event.id)).all()


def send_digests(creditor: Creditor, day: date) -> int:
    """Write today's digest for each of the creditor's digest users; returns messages written.
    Safe to repeat and to run concurrently: a user gets at most one digest a day."""
    users = db.session.scalars(
        select(CreditorUser).where(CreditorUser.creditor_id == creditor.id, CreditorUser.notify == "digest",
                                   or_(CreditorUser.last_digest_on.is_(None), CreditorUser.last_digest_on < day))
        .order_by(CreditorUser.id).execution_options(populate_existing=True)).all()
    db.session.commit()
    written = 0
    for user_id in [u.id for u in users]:
        written += _digest_for(creditor, user_id, day)
    return written


def _digest_for(creditor: Creditor, user_id: int, day: date) -> int:
    user = db.session.get(CreditorUser, user_id, populate_existing=True)
    if user is None or user.notify != "digest" or (user.last_digest_on is not None and user.last_digest_on >= day):
        db.session.rollback()
        return 0
    start, end = window(user, creditor, day)
    # Claim the day first: a concurrent run waits on this row, then finds the day taken.
    claimed = db.session.execute(
        update(CreditorUser).where(CreditorUser.id == user.id, CreditorUser.notify == "digest",
                                   or_(CreditorUser.last_digest_on.is_(None), CreditorUser.last_digest_on < day))
        .values(last_digest_on=day).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        db.session.rollback()
        return 0
    rows = notices(creditor, start, end)
    if rows:
        db.session.add(_message(creditor, user, day, rows))
    try:
        db.session.commit()
    except IntegrityError:  # the same digest written by another run: unique daily_key
        db.session.rollback()
        return 0
    return 1 if rows else 0


def _message(creditor: Creditor, user: CreditorUser, day: date, rows) -> OutboxMessage:
    base = current_app.config["PORTAL_BASE_URL"]
    ctx = dict(creditor=creditor, user=user, day=day, rows=rows, base=base, count=len(rows))
    with force_locale(creditor.language):
        text_body = render_template("email/digest.txt", **ctx)
        html_body = render_template("email/digest.html", **ctx)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    first_debtor = rows[0][1]
    return OutboxMessage(creditor_id=creditor.id, debtor_id=first_debtor.id, kind="digest", channel="email",
                         daily_key=f"digest:{user.id}:{day.isoformat()}", to_addr=user.email,
                         subject=text_body.splitlines()[0][:300], text_body=text_body, html_body=html_body,
                         message_id_header=f"<{uuid.uuid4().hex}@{domain}>", status="pending",
                         next_attempt_at=utcnow())
