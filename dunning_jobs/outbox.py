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
Per message: one claim, the SMTP exchange, one statement marking it sent with its reminders and
their events (PostgreSQL; three on SQLite), one commit. The e-mail's bytes are built when the
message is composed (OutboxMessage.raw); a message without them is built here.
Temporary failures (4xx) retry with exponential backoff; permanent ones (5xx) are recorded.
Without SMTP_URL the outbox is the mailbox: messages are marked delivered there.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import select, text, update

from portal.extensions import db
from portal.models import Creditor, OutboxMessage, Reminder, utcnow
from portal.services import events
from portal.services.reminders import smtp_bytes, to_email  # noqa: F401 (to_email: what the benchmark sends raw)

MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(minutes=1)

OUTBOX = OutboxMessage.__table__


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


def _claim(c):
    """The next due message as a plain row (no ORM object: one per message adds up).
    Due order, read straight off the (status, next_attempt_at) index; ordered by id, PostgreSQL
    walked the primary key past every message already sent, each claim costing O(sent so far)."""
    return c.execute(
        select(OUTBOX).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= utcnow())
        .order_by(OUTBOX.c.next_attempt_at).limit(1).with_for_update(skip_locked=True)).first()


class Taken(Exception):
    """Another sender marked this message sent first (possible on SQLite, which has no row locks)."""


def _record(c, msg, *rows) -> None:
    """Events about `msg` in one INSERT on the sender's connection, each (type, invoice id, data)."""
    events.record_many([{"creditor_id": msg.creditor_id, "debtor_id": msg.debtor_id, "invoice_id": invoice_id,
                         "type": type, "actor": "system", "data": {"message_id": msg.id, **data}}
                        for type, invoice_id, data in rows], connection=c)


# PostgreSQL: the guarded mark, its reminders and their events in one statement, one round trip
# to the server instead of three (SQLite, in process, takes the three of _mark_sent below).
MARK_SENT_PG = text("""
WITH m AS (UPDATE outbox_message SET status = 'sent', sent_at = :now, attempts = attempts + 1, last_error = NULL
           WHERE id = :id AND status = 'pending' RETURNING id, creditor_id, debtor_id, kind, channel),
     r AS (UPDATE reminder SET status = 'sent' FROM m WHERE reminder.message_id = m.id
           RETURNING reminder.invoice_id, reminder.step_code),
     e AS (INSERT INTO event (creditor_id, debtor_id, invoice_id, type, actor, at, data)
           SELECT m.creditor_id, m.debtor_id, r.invoice_id,
                  CASE WHEN r.step_code = 'thank_you' THEN 'thank_you.sent' ELSE 'reminder.sent' END, 'system',
                  :now, json_build_object('message_id', m.id, 'step', r.step_code, 'channel', m.channel)
           FROM m, r
           UNION ALL
           SELECT m.creditor_id, m.debtor_id, NULL, 'message.sent', 'system', :now,
                  json_build_object('message_id', m.id, 'kind', m.kind)
           FROM m WHERE NOT EXISTS (SELECT FROM r))
SELECT count(*) FROM m""")


def _mark_sent(c, msg) -> None:
    """Guarded: only a message still pending is marked. The caller commits."""
    if c.dialect.name == "postgresql":
        if c.execute(MARK_SENT_PG, {"id": msg.id, "now": utcnow()}).scalar() != 1:
            raise Taken(msg.id)
        return
    guard = c.execute(
        update(OUTBOX).where(OUTBOX.c.id == msg.id, OUTBOX.c.status == "pending")
        .values(status="sent", sent_at=utcnow(), attempts=OUTBOX.c.attempts + 1, last_error=None))
    if guard.rowcount != 1:
        raise Taken(msg.id)
    rows = c.execute(
        update(Reminder.__table__).where(Reminder.message_id == msg.id).values(status="sent")
        .returning(Reminder.invoice_id, Reminder.step_code)).all()
    _record(c, msg, *[("thank_you.sent" if step == "thank_you" else "reminder.sent", invoice_id,
                    {"step": step, "channel": msg.channel}) for invoice_id, step in rows]
            or [("message.sent", None, {"kind": msg.kind})])


def _settle_failure(c, msg, error: str, code: int, marked: bool) -> None:
    """Record a refusal: 4xx retries later with backoff, 5xx (or too many attempts) fails."""
    error = error[:2000]
    if marked:  # refused at the final dot after it was recorded sent (and committed): undo
        # The log is append-only: its "sent" events for this message are superseded, said here.
        _record(c, msg, ("message.refused", None, {"kind": msg.kind, "code": code, "error": error[:300]}))
    attempts = msg.attempts + 1  # the claimed row's count: an undone mark counted nothing
    values = {"status": "pending", "sent_at": None, "attempts": attempts, "last_error": error}
    if code >= 500 or attempts >= MAX_ATTEMPTS:
        values["status"] = reminders = "failed"
        _record(c, msg, ("message.failed", None, {"kind": msg.kind, "error": error[:300]}))
    else:
        values["next_attempt_at"] = utcnow() + backoff(attempts)
        reminders = "planned" if marked else None
    c.execute(update(OUTBOX).where(OUTBOX.c.id == msg.id).values(**values))
    if reminders:
        c.execute(update(Reminder.__table__).where(Reminder.message_id == msg.id).values(status=reminders))
    c.commit()


def _deliver(conn: smtplib.SMTP, message: bytes, sender: str, rcpt: str, before_final_dot) -> None:
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
    body = smtplib._quote_periods(message)  # noqa: SLF001
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
    sender = _address(current_app.config["MAIL_FROM"])
    creditors: dict = {}  # for messages composed without their bytes
    db.session.commit()  # what the caller has pending, as when this ran in its session
    # A connection of its own for the whole run: a session checks one out of the pool (and pings
    # it) for every transaction, and ORM statements cost several times Core's CPU.
    c = db.engine.connect()
    conn = None
    try:
        while limit is None or result.sent + result.failed < limit:
            msg = _claim(c)
            if msg is None:
                c.commit()
                break
            if url is None:
                try:
                    _mark_sent(c, msg)
                    c.commit()
                    result.sent += 1
                except Taken:
                    c.rollback()
                continue
            raw = msg.raw
            if raw is None:
                if msg.creditor_id not in creditors:
                    creditors[msg.creditor_id] = c.execute(
                        select(Creditor.__table__).where(Creditor.id == msg.creditor_id)).one()
                raw = smtp_bytes(msg, creditors[msg.creditor_id])
            marked = False

            def before_final_dot():
                nonlocal marked
                _mark_sent(c, msg)
                c.commit()
                marked = True

            try:
                if conn is None:
                    conn = connect(url)
                _deliver(conn, raw, sender, msg.to_addr, before_final_dot)
                result.sent += 1
            except Taken:
                # Mid-DATA without the final dot: only closing the connection aborts it.
                c.rollback()
                conn.close()
                conn = None
            except smtplib.SMTPRecipientsRefused as e:
                code = next(iter(e.recipients.values()))[0]
                _settle_failure(c, msg, f"recipient refused: {e.recipients}", code, marked)
                result.failed += code >= 500
                result.deferred += code < 500
                conn = _reset(conn)
            except smtplib.SMTPResponseException as e:
                _settle_failure(c, msg, f"{e.smtp_code} {e.smtp_error!r}", e.smtp_code, marked)
                result.failed += e.smtp_code >= 500
                result.deferred += e.smtp_code < 500
                conn = _reset(conn)
            except (OSError, smtplib.SMTPException) as e:
                # Connection lost or refused: leave this and the rest for the next run.
                c.rollback()
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
        c.close()
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return result


def _reset(conn):
    try:
        conn.rset()
        return conn
    except (OSError, smtplib.SMTPException):
        return None


def _address(header: str) -> str:
    return parseaddr(header)[1] or header
