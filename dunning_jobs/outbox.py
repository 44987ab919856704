"""Durable outbox -> SMTP, after commit, one connection per batch.

Each message is claimed with FOR UPDATE SKIP LOCKED, so concurrent senders never take the same
one. Exactly-once as far as SMTP allows: the body is streamed, then the message is marked sent
and committed, and only then the final "." that makes the server accept it goes out. A crash
before that commit leaves the server with an unfinished transaction, which it discards, and the
message still pending. The one window left is between that commit and the dot going out (a
single send() call): a crash exactly there loses the message, recorded as sent — the trade
chosen over a duplicate reminder.
The mark itself is guarded (status still 'pending'): SQLite has no row locks, so there two
senders can claim the same message, and the one that loses the guard drops its connection
instead of sending the dot.
Temporary failures (4xx) retry with exponential backoff; permanent ones (5xx) are recorded.
Without SMTP_URL the outbox is the mailbox: messages are marked delivered there.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import Creditor, OutboxMessage, Reminder, utcnow
from portal.services import events

MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(minutes=1)


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 6 hours."""
    return min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), timedelta(hours=6))


def connect(url: str, timeout: float = 30) -> smtplib.SMTP:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port
    if u.scheme == "smtps":
        conn = smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = smtplib.SMTP(host, port or 25, timeout=timeout)
        if u.scheme == "smtp+starttls":
            conn.starttls(context=ssl.create_default_context())
    # The final "." goes out in a write of its own (see _deliver): without TCP_NODELAY, Nagle's
    # algorithm holds it for the server's delayed ACK, about 40 ms a message.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if u.username:
        conn.login(unquote(u.username), unquote(u.password or ""))
    return conn


def to_email(msg: OutboxMessage, creditor: Creditor) -> EmailMessage:
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = msg.to_addr
    email["Reply-To"] = creditor.email
    email["Subject"] = msg.subject
    email["Message-ID"] = msg.message_id_header
    email["Date"] = format_datetime(msg.created_at)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Relance-Kind"] = msg.kind
    email.set_content(msg.text_body)
    email.add_alternative(msg.html_body, subtype="html")
    if msg.attachment:
        email.add_attachment(msg.attachment, maintype="application", subtype="pdf", filename=msg.attachment_name)
    return email


def _claim():
    return db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.id).limit(1).with_for_update(skip_locked=True))


class Taken(Exception):
    """Another sender marked this message sent first (possible on SQLite, which has no row locks)."""


def _mark_sent(msg: OutboxMessage) -> None:
    guard = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == msg.id, OutboxMessage.status == "pending")
        .values(status="sent").execution_options(synchronize_session=False))
    if guard.rowcount != 1:
        raise Taken(msg.id)
    msg.status, msg.sent_at, msg.attempts, msg.last_error = "sent", utcnow(), msg.attempts + 1, None
    db.session.execute(update(Reminder).where(Reminder.message_id == msg.id).values(status="sent"))
    rows = db.session.execute(select(Reminder.invoice_id, Reminder.step_code)
                              .where(Reminder.message_id == msg.id)).all()
    for invoice_id, step in rows:
        events.record("thank_you.sent" if step == "thank_you" else "reminder.sent", creditor_id=msg.creditor_id,
                      debtor_id=msg.debtor_id, invoice_id=invoice_id, actor="system", message_id=msg.id,
                      step=step, channel=msg.channel)
    if not rows:
        events.record("message.sent", creditor_id=msg.creditor_id, debtor_id=msg.debtor_id, actor="system",
                      message_id=msg.id, kind=msg.kind)


def _mark_failed(msg: OutboxMessage, error: str, permanent: bool) -> None:
    msg.attempts += 1
    msg.last_error = error[:2000]
    if permanent or msg.attempts >= MAX_ATTEMPTS:
        msg.status = "failed"
        db.session.execute(update(Reminder).where(Reminder.message_id == msg.id).values(status="failed"))
        events.record("message.failed", creditor_id=msg.creditor_id, debtor_id=msg.debtor_id, actor="system",
                      message_id=msg.id, kind=msg.kind, error=msg.last_error[:300])
    else:
        msg.next_attempt_at = utcnow() + backoff(msg.attempts)


def _deliver(conn: smtplib.SMTP, email: EmailMessage, sender: str, rcpt: str, before_final_dot) -> None:
    """SMTP MAIL/RCPT/DATA by hand so that `before_final_dot` runs before the server accepts."""
    conn.ehlo_or_helo_if_needed()
    code, resp = conn.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    code, resp = conn.rcpt(rcpt)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({rcpt: (code, resp)})
    code, resp = conn.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, resp)
    # What smtplib.SMTP.data() does, minus the final dot.
    body = smtplib._quote_periods(email.as_bytes(policy=SMTP_POLICY))  # noqa: SLF001
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    conn.send(body)
    before_final_dot()
    conn.send(b".\r\n")
    code, resp = conn.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, resp)


def send_pending(limit: int | None = None) -> Sent:
    """Send what is due in the outbox. Stops at the first connection failure (server down):
    the rest stays pending, untouched, for the next run."""
    result = Sent()
    url = current_app.config["SMTP_URL"]
    sender = current_app.config["MAIL_FROM"]
    conn = None
    try:
        while limit is None or result.sent + result.failed < limit:
            msg = _claim()
            if msg is None:
                db.session.commit()
                break
            if url is None:
                try:
                    _mark_sent(msg)
                    db.session.commit()
                    result.sent += 1
                except Taken:
                    db.session.rollback()
                continue
            creditor = db.session.get(Creditor, msg.creditor_id)
            email = to_email(msg, creditor)
            try:
                if conn is None:
                    conn = connect(url)
                _deliver(conn, email, _address(sender), msg.to_addr, lambda: (_mark_sent(msg), db.session.commit()))
                result.sent += 1
            except Taken:
                # Mid-DATA without the final dot: only closing the connection aborts it.
                db.session.rollback()
                conn.close()
                conn = None
            except smtplib.SMTPRecipientsRefused as e:
                code = next(iter(e.recipients.values()))[0]
                _settle_failure(msg, f"recipient refused: {e.recipients}", code)
                result.failed += code >= 500
                result.deferred += code < 500
                conn = _reset(conn)
            except smtplib.SMTPResponseException as e:
                _settle_failure(msg, f"{e.smtp_code} {e.smtp_error!r}", e.smtp_code)
                result.failed += e.smtp_code >= 500
                result.deferred += e.smtp_code < 500
                conn = _reset(conn)
            except (OSError, smtplib.SMTPException) as e:
                # Connection lost or refused: leave this and the rest for the next run.
                db.session.rollback()
                current_app.logger.warning("SMTP unavailable, outbox left pending: %s", e)
                conn = None
                break
            except BaseException:
                # Anything else (the database lost while marking sent…) may leave the connection
                # inside DATA, where QUIT would be read as message text and wait for the timeout:
                # closing it aborts the unfinished message, which stays pending.
                if conn is not None:
                    conn.close()
                    conn = None
                raise
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return result


def _settle_failure(msg: OutboxMessage, error: str, code: int) -> None:
    if msg.status == "sent":  # refused at the final dot after we had recorded it: undo
        # _mark_sent counted this attempt already; _mark_failed counts it below.
        msg.status, msg.sent_at, msg.attempts = "pending", None, msg.attempts - 1
        db.session.execute(update(Reminder).where(Reminder.message_id == msg.id).values(status="planned"))
        # The log is append-only: its "sent" events for this message are superseded, said here.
        events.record("message.refused", creditor_id=msg.creditor_id, debtor_id=msg.debtor_id, actor="system",
                      message_id=msg.id, kind=msg.kind, code=code, error=error[:300])
    _mark_failed(msg, error, permanent=code >= 500)
    db.session.commit()


def _reset(conn):
    try:
        conn.rset()
        return conn
    except (OSError, smtplib.SMTPException):
        return None


def _address(header: str) -> str:
    return parseaddr(header)[1] or header
