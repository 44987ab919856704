"""Notes on a debtor shared by the creditor's users, and their mentions: "@marie" names the
colleague whose e-mail starts "marie@", who is e-mailed the note through the outbox (in the same
transaction as the note, sent after commit like every message). Only the users of this creditor
can be mentioned; the author is never e-mailed about their own note."""
from __future__ import annotations

import re
import uuid
from email.utils import parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select

from ..extensions import db
from ..models import Creditor, CreditorUser, Debtor, DebtorNote, OutboxMessage, utcnow
from . import Invalid, creditor_users, events
from .checks import check_storable

MAX_CHARS = 5000
#: the outbox kind of the e-mail telling a colleague they were mentioned
KIND = "mention"
# "@" not inside a word or an e-mail address ("bob@example.com" mentions nobody), then an e-mail
# local part; a full stop after it ends the sentence, not the name.
MENTION = re.compile(r"(?<![\w.+@-])@([A-Za-z0-9][A-Za-z0-9._%+-]{0,63})")


def check_body(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a note needs some text", "body", code="empty")
    value = value.replace("\r\n", "\n").strip()
    if len(value) > MAX_CHARS:
        raise Invalid(f"a note has {MAX_CHARS} characters at most", "body", code="too_long")
    return check_storable(value, "body")


def mentioned(creditor_id: int, body: str) -> list[CreditorUser]:
    """The creditor's users that `body` mentions, each once, in the order of of_creditor."""
    names = {m.rstrip(".").lower() for m in MENTION.findall(body)}
    return [u for u in creditor_users.of_creditor(creditor_id) if u.email.rpartition("@")[0].lower() in names]


def add(creditor: Creditor, debtor: Debtor, author: CreditorUser, body) -> DebtorNote:
    """Record the note, its `note.added` event and one e-mail per colleague mentioned (not the
    author), in one transaction."""
    body = check_body(body)
    users = mentioned(creditor.id, body)
    note = DebtorNote(creditor_id=creditor.id, debtor_id=debtor.id, author_id=author.id, body=body,
                      mentions=[u.id for u in users])
    db.session.add(note)
    db.session.flush()
    told = [u for u in users if u.id != author.id]
    for user in told:
        db.session.add(_mention_email(creditor, debtor, author, user, body))
    events.record("note.added", creditor_id=creditor.id, debtor_id=debtor.id, actor="creditor", user=author.email,
                  note_id=note.id, mentions=[u.email for u in users], excerpt=body[:200])
    db.session.commit()
    return note


def for_debtor(creditor_id: int, debtor_id: int, limit: int = 100) -> list[tuple[DebtorNote, list[str]]]:
    """The debtor's notes, newest first, each with the e-mails of the users it mentions."""
    notes = list(db.session.scalars(select(DebtorNote).where(DebtorNote.creditor_id == creditor_id,
                                                             DebtorNote.debtor_id == debtor_id)
                                    .order_by(DebtorNote.id.desc()).limit(limit)))
    emails = {u.id: u.email for u in creditor_users.of_creditor(creditor_id)}
    return [(n, [emails[i] for i in (n.mentions or []) if i in emails]) for n in notes]


def _mention_email(creditor: Creditor, debtor: Debtor, author: CreditorUser, user: CreditorUser,
                   body: str) -> OutboxMessage:
    url = f"{current_app.config['PORTAL_BASE_URL']}/app/debtors/{debtor.ref}#notes"
    ctx = dict(creditor=creditor, debtor=debtor, author=author.email, body=body, url=url)
    with force_locale(creditor.language):  # the back office's language, as the other notices to users
        text_body = render_template("email/mention.txt", **ctx)
        html_body = render_template("email/mention.html", **ctx)
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "relance.local"
    return OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind=KIND, channel="email",
                         to_addr=user.email, subject=text_body.splitlines()[0][:300], text_body=text_body,
                         html_body=html_body, message_id_header=f"<{uuid.uuid4().hex}@{domain}>",
                         status="pending", next_attempt_at=utcnow())
