"""A dead link renewed by its debtor (CONTRACT §10): one click e-mails a fresh link to the address
on file, at most MAX_PER_DAY a day (the creditor's calendar day). Whatever happens the caller
shows the same page, so nothing here is told to the visitor: renew() returns the message queued,
or None, for tests and logs only.

The daily count is the database's: each message takes a numbered slot in outbox_message's unique
daily_key ("link:<debtor>:<day>:<n>"); on PostgreSQL the debtor's row is locked while counting,
and on SQLite (no row locks) two clicks racing for one slot collide on the key, and one gives up."""
from __future__ import annotations

import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..domain.calendar import today_for
from ..extensions import db
from ..models import Debtor, OutboxMessage, utcnow
from . import events, links

KIND = "link"
MAX_PER_DAY = 3


def renew(token: str) -> OutboxMessage | None:
    """E-mail a fresh link to the debtor a genuine (if expired or revoked) `token` names."""
    dead = links.named_by(token)
    if dead is None:
        return None
    debtor = db.session.scalar(select(Debtor).where(Debtor.id == dead.debtor_id).with_for_update())
    if not debtor.email:
        db.session.rollback()
        return None
    prefix = f"{KIND}:{debtor.id}:{today_for(debtor.creditor).isoformat()}:"
    used = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.debtor_id == debtor.id, OutboxMessage.kind == KIND, OutboxMessage.daily_key.like(prefix + "%")))
    if used >= MAX_PER_DAY:
        db.session.rollback()
        return None
    try:
        issued = links.issue(debtor, issued_by="debtor", commit=False)
        message = _message(debtor, issued.url, prefix + str(used + 1))
        db.session.add(message)
        db.session.flush()
        events.record("link.resent", creditor_id=debtor.creditor_id, debtor_id=debtor.id, actor="debtor",
                      link_id=issued.link.id, message_id=message.id, dead_link_id=dead.id)
        db.session.commit()
    except (IntegrityError, OperationalError):  # a concurrent click took this slot (SQLite: the write lock)
        db.session.rollback()
        return None
    return message


def _message(debtor: Debtor, url: str, daily_key: str) -> OutboxMessage:
    creditor = debtor.creditor
    with force_locale(debtor.language):
        text_body = render_template("email/portal_link.txt", creditor=creditor, url=url)
        html_body = render_template("email/portal_link.html", creditor=creditor, url=url, lang=debtor.language)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    return OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind=KIND, channel="email",
                         daily_key=daily_key, to_addr=debtor.email,
                         subject=" ".join(text_body.splitlines()[0].split())[:300],
                         text_body=text_body, html_body=html_body,
                         message_id_header=f"<{uuid.uuid4().hex}@{domain}>", status="pending",
                         next_attempt_at=utcnow())
