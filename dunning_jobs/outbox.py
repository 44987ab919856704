"""Durable outbox -> SMTP, after commit, one connection per run, messages in batches.

What it guarantees, and how:
- Never the same message twice. A batch of due messages is claimed with FOR UPDATE SKIP LOCKED
  (concurrent senders never take the same one) and stays locked until the batch is recorded.
  Each message's body is streamed, then its handover (one guarded insert into outbox_handover,
  committed at once) and only then the final "." that makes the server accept it. A crash before
  that commit leaves the server an unfinished transaction, which it discards, and the message
  pending. The one window left, between that commit and the dot (a single send() call), loses the
  message recorded as sent: the trade chosen over a duplicate reminder.
- The handover is guarded: on PostgreSQL by the claim's lock and its primary key, on SQLite,
  which has no row locks, by a check that the message is still pending; there two senders can
  claim the same message, and the one that loses the guard drops its connection instead of
  sending the dot.
- After the server's answer the batch is recorded (messages sent: status, reminders, events,
  handover rows deleted; refusals) in the claim's transaction. The server only ever waits for the
  handover: on PostgreSQL a thread records a batch while the next goes out. A handover left by a
  killed sender is recorded sent by the next run (see _recover).
- Temporary refusals (4xx) retry with exponential backoff; permanent ones (5xx) are recorded
  failed. A lost connection stops the run and leaves the rest pending.

The e-mail's bytes are built when the message is composed (OutboxMessage.raw); a message without
them is built here. Without SMTP_URL the outbox is the mailbox: messages are marked delivered there.
"""
from __future__ import annotations

import queue
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from urllib.parse import unquote, urlparse

import psycopg
from flask import current_app
from psycopg import pq
from sqlalchemy import bindparam, delete, select, text, update

from portal.extensions import db
from portal.models import Creditor, OutboxHandover, OutboxMessage, Reminder, UTCDateTime, utcnow
from portal.services import events
from portal.services.reminders import smtp_bytes

MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(minutes=1)
#: messages claimed at once, and how long a batch may keep them (and its reminders) locked
BATCH = 50
BATCH_SECONDS = 5.0

OUTBOX = OutboxMessage.__table__
HANDOVER = OutboxHandover.__table__


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 6 hours."""
    return min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), timedelta(hours=6))


def connect(url: str, timeout: float = 30) -> smtplib.SMTP:
    parts = urlparse(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port or 25, timeout=timeout)
        if parts.scheme == "smtp+starttls":
            smtp.starttls(context=ssl.create_default_context())
    # The final "." goes out in a write of its own (see _deliver): without TCP_NODELAY, Nagle's
    # algorithm holds it for the server's delayed ACK, about 40 ms a message.
    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if parts.username:
        smtp.login(unquote(parts.username), unquote(parts.password or ""))
    return smtp


#: what sending needs of a message (its bodies and attachment only when its bytes were not stored)
CLAIMED = [OUTBOX.c[k] for k in ("id", "creditor_id", "debtor_id", "kind", "channel", "to_addr", "raw", "attempts")]


def _claim(connection, size: int):
    """The next `size` due messages as plain rows (no ORM object: one per message adds up), locked
    until the caller commits. Due order, read straight off the (status, next_attempt_at) index.
    Handovers are not excluded here (an anti-join would read every pending message per claim):
    those of killed senders are recorded before the first claim (_recover), and one whose sender
    died since fails its guard (Taken)."""
    return connection.execute(
        select(*CLAIMED).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= utcnow())
        .order_by(OUTBOX.c.next_attempt_at).limit(size)
        .with_for_update(skip_locked=True, of=OUTBOX)).all()


class Taken(Exception):
    """Another sender handed this message over first: on SQLite, which has no row locks, or a
    sender killed during this run (PostgreSQL), whose leftover handover conflicts."""


HAND_OVER = text(
    "INSERT INTO outbox_handover (message_id, handed_at) SELECT :id, :now "
    "WHERE EXISTS (SELECT 1 FROM outbox_message WHERE id = :id AND status = 'pending') "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
).bindparams(bindparam("now", type_=UTCDateTime))
# PostgreSQL's sender holds the message locked from its claim: nobody else can have recorded it
# meanwhile, so the primary key alone guards the handover (a killed sender's leftover conflicts).
HAND_OVER_LOCKED = (b"INSERT INTO outbox_handover (message_id, handed_at) VALUES ($1, $2) "
                    b"ON CONFLICT (message_id) DO NOTHING RETURNING message_id")
HAND_OVER_NAME = b"relance_hand_over"
DUPLICATE_PREPARED_STATEMENT = b"42P05"


class _HandOver:
    """The durable "sent" before the final dot, guarded: only a pending message not yet handed
    over. Committed when the call returns. On PostgreSQL, over the run's autocommit connection,
    one round trip, prepared once and run straight through libpq (the server is waiting for
    the dot, and the driver's cursor takes more CPU than the insert)."""

    def __init__(self, connection):
        self.connection, self.pgconn = connection, None
        if _autocommit(connection):
            self.pgconn = connection.connection.driver_connection.pgconn
            result = self.pgconn.prepare(HAND_OVER_NAME, HAND_OVER_LOCKED)
            # A pooled connection may have it from an earlier run: the same statement.
            if (result.status != pq.ExecStatus.COMMAND_OK
                    and result.error_field(pq.DiagnosticField.SQLSTATE) != DUPLICATE_PREPARED_STATEMENT):
                raise psycopg.errors.error_from_result(result)

    def __call__(self, message_id: int) -> None:
        if self.pgconn is None:
            taken = self.connection.execute(HAND_OVER, {"id": message_id, "now": utcnow()}).first() is None
            self.connection.commit()
        else:
            result = self.pgconn.exec_prepared(HAND_OVER_NAME, [b"%d" % message_id, utcnow().isoformat().encode()])
            if result.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.errors.error_from_result(result)
            taken = result.ntuples == 0
        if taken:
            raise Taken(message_id)


def _take_back(connection, message_id: int) -> None:
    """The server refused the message at its final dot: not handed over after all."""
    connection.execute(delete(HANDOVER).where(HANDOVER.c.message_id == message_id))
    _commit(connection)


def _autocommit(connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _commit(connection) -> None:
    if not _autocommit(connection):
        connection.commit()


def _record(connection, message, *rows, at=None) -> None:
    """Events about `message` in one INSERT on the sender's connection, each (type, invoice id, data)."""
    events.record_many([{"creditor_id": message.creditor_id, "debtor_id": message.debtor_id,
                         "invoice_id": invoice_id, "type": type, "actor": "system",
                         "data": {"message_id": message.id, **data}, **({"at": at} if at else {})}
                        for type, invoice_id, data in rows], connection=connection)


# PostgreSQL: handovers deleted, their messages, reminders and events recorded sent in one
# statement, however many messages (SQLite, in process, takes four statements a message).
RECORD_SENT_PG = text("""
WITH h AS (DELETE FROM outbox_handover WHERE message_id = ANY(:ids) RETURNING message_id, handed_at),
     m AS (UPDATE outbox_message o SET status = 'sent', sent_at = h.handed_at, attempts = o.attempts + 1,
                  last_error = NULL
           FROM h WHERE o.id = h.message_id AND o.status = 'pending'
           RETURNING o.id, o.creditor_id, o.debtor_id, o.kind, o.channel, o.sent_at),
     r AS (UPDATE reminder SET status = 'sent' FROM m WHERE reminder.message_id = m.id
           RETURNING reminder.message_id, reminder.invoice_id, reminder.step_code),
     e AS (INSERT INTO event (creditor_id, debtor_id, invoice_id, type, actor, at, data)
           SELECT m.creditor_id, m.debtor_id, r.invoice_id,
                  CASE WHEN r.step_code = 'thank_you' THEN 'thank_you.sent' ELSE 'reminder.sent' END, 'system',
                  m.sent_at, json_build_object('message_id', m.id, 'step', r.step_code, 'channel', m.channel)
           FROM m JOIN r ON r.message_id = m.id
           UNION ALL
           SELECT m.creditor_id, m.debtor_id, NULL, 'message.sent', 'system', m.sent_at,
                  json_build_object('message_id', m.id, 'kind', m.kind)
           FROM m WHERE NOT EXISTS (SELECT FROM r WHERE r.message_id = m.id))
SELECT count(*) FROM m""")


def _record_sent(connection, ids: list[int]) -> None:
    """Handed-over messages recorded sent: status, sent_at (the handover's time), reminders,
    events; their handover rows deleted. The caller commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(RECORD_SENT_PG, {"ids": ids})
        return
    for message_id in ids:
        handed_at = connection.execute(delete(HANDOVER).where(HANDOVER.c.message_id == message_id)
                              .returning(HANDOVER.c.handed_at)).scalar()
        message = handed_at and connection.execute(
            update(OUTBOX).where(OUTBOX.c.id == message_id, OUTBOX.c.status == "pending")
            .values(status="sent", sent_at=handed_at, attempts=OUTBOX.c.attempts + 1, last_error=None)
            .returning(OUTBOX.c.id, OUTBOX.c.creditor_id, OUTBOX.c.debtor_id, OUTBOX.c.kind,
                       OUTBOX.c.channel)).first()
        if not message:
            continue
        rows = connection.execute(
            update(Reminder.__table__).where(Reminder.message_id == message_id).values(status="sent")
            .returning(Reminder.invoice_id, Reminder.step_code)).all()
        _record(connection, message,
                *[("thank_you.sent" if step == "thank_you" else "reminder.sent", invoice_id,
                   {"step": step, "channel": message.channel}) for invoice_id, step in rows]
                or [("message.sent", None, {"kind": message.kind})], at=handed_at)


def _recover(connection) -> None:
    """Record sent what killed senders handed over: handover rows whose message no live sender
    holds locked (a live one keeps its batch locked until it has recorded them itself)."""
    ids = connection.execute(
        select(HANDOVER.c.message_id).join(OUTBOX, OUTBOX.c.id == HANDOVER.c.message_id)
        .with_for_update(skip_locked=True, of=OUTBOX)).scalars().all()
    if ids:
        _record_sent(connection, ids)
    connection.commit()


def _settle_failure(connection, message, error: str, code: int) -> None:
    """Record a refusal: 4xx retries later with backoff, 5xx (or too many attempts) fails.
    The caller commits."""
    error = error[:2000]
    attempts = message.attempts + 1
    values = {"attempts": attempts, "last_error": error}
    if code >= 500 or attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
        connection.execute(
            update(Reminder.__table__).where(Reminder.message_id == message.id).values(status="failed"))
        _record(connection, message, ("message.failed", None, {"kind": message.kind, "error": error[:300]}))
    else:
        values["next_attempt_at"] = utcnow() + backoff(attempts)
    connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(**values))


class _Outcomes:
    """What a batch did, recorded once it is over: the messages handed over and accepted (to be
    recorded sent) and the refusals; the run's totals counted as it goes."""

    def __init__(self, totals: Sent):
        self.totals = totals
        self.sent_ids: list[int] = []
        self.refusals: list[tuple] = []  # (message, error, SMTP code)

    def sent(self, message_id: int) -> None:
        self.sent_ids.append(message_id)
        self.totals.sent += 1

    def refused(self, message, error: str, code: int) -> None:
        self.refusals.append((message, error, code))
        if code >= 500:
            self.totals.failed += 1
        else:
            self.totals.deferred += 1


class _Batches:
    """The claims' connections. A batch is claimed on one, sent, then recorded (messages sent,
    refusals) and committed on it, and the next batch is claimed there. On PostgreSQL two take
    turns, and a thread records one batch and claims the one after next while the next goes out
    (the messages being sent stay locked meanwhile, so that claim skips them); SQLite does it in
    line on its one connection."""

    def __init__(self, engine, threaded: bool):
        self.error: BaseException | None = None
        self.connections = [engine.connect() for _ in range(2 if threaded else 1)]
        self.ready: queue.Queue = queue.Queue()  # (connection, its claimed batch)
        self.jobs: queue.Queue | None = None
        if threaded:
            self.jobs = queue.Queue()
            self.thread = threading.Thread(target=self._run, name="outbox-recorder", daemon=True)
            self.thread.start()

    def start(self, size: int) -> None:
        for connection in self.connections:
            self.ready.put((connection, _claim(connection, size)))

    def next(self):
        """The next claimed batch, with its connection (waits for the recorder to hand it back)."""
        connection, messages = self.ready.get()
        if self.error is not None:
            self.ready.put((connection, []))
            raise self.error
        return connection, messages

    def record(self, connection, outcomes: _Outcomes, claim: int) -> None:
        """Record the batch claimed on `connection` and commit it (which releases its locks), then
        claim the next `claim` messages there."""
        if self.jobs is None:
            self._record(connection, outcomes, claim)
        else:
            self.jobs.put((connection, outcomes, claim))

    def finish(self) -> None:
        """Every batch recorded and committed; raises what the recorder met."""
        idle = [self.ready.get() for _ in self.connections]
        for item in idle:
            self.ready.put(item)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.jobs is not None and self.thread.is_alive():
            self.jobs.put(None)
            self.thread.join()
        for connection in self.connections:
            connection.close()  # anything not committed rolls back: handovers stay, for the next run

    def _record(self, connection, outcomes: _Outcomes, claim: int) -> None:
        if outcomes.sent_ids:
            _record_sent(connection, outcomes.sent_ids)
        for message, error, code in outcomes.refusals:
            _settle_failure(connection, message, error, code)
        connection.commit()
        self.ready.put((connection, _claim(connection, claim) if claim else []))

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            connection, outcomes, claim = job
            try:
                if self.error is None:
                    self._record(connection, outcomes, claim)
                    continue
            except BaseException as e:  # noqa: BLE001 (raised in the sender's thread)
                self.error = e
                connection.rollback()
            self.ready.put((connection, []))


def _deliver(smtp: smtplib.SMTP, message: bytes, sender: str, rcpt: str, before_final_dot) -> None:
    """SMTP MAIL/RCPT/DATA by hand so that `before_final_dot` runs before the server accepts."""
    smtp.ehlo_or_helo_if_needed()
    code, resp = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, resp, sender)
    code, resp = smtp.rcpt(rcpt)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({rcpt: (code, resp)})
    code, resp = smtp.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, resp)
    # What smtplib.SMTP.data() does, minus the final dot.
    body = smtplib._quote_periods(message)  # noqa: SLF001
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body)
    before_final_dot()
    smtp.send(b".\r\n")
    code, resp = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, resp)


class _Mailer:
    """The run's sending side: one SMTP connection, opened for the first message and kept for
    the run, and the handover before each final dot. Without an SMTP URL the outbox is the
    mailbox: a message handed over is delivered."""

    def __init__(self, smtp_url: str | None, mail_from: str, handovers):
        self.smtp_url, self.mail_from, self.handovers = smtp_url, mail_from, handovers
        self.hand_over = _HandOver(handovers)
        self.smtp: smtplib.SMTP | None = None
        self.creditors: dict = {}  # for messages composed without their bytes

    def send(self, message, outcomes: _Outcomes) -> bool:
        """One claimed message: handed over, sent, its outcome noted for the batch's record.
        False when the SMTP server is unavailable: the run stops, the rest stays pending."""
        if self.smtp_url is None:
            try:
                self.hand_over(message.id)
            except Taken:
                return True
            outcomes.sent(message.id)
            return True

        raw = message.raw if message.raw is not None else self._compose(message)
        handed_over = False

        def before_final_dot():
            nonlocal handed_over
            self.hand_over(message.id)
            handed_over = True

        try:
            if self.smtp is None:
                self.smtp = connect(self.smtp_url)
            _deliver(self.smtp, raw, self.mail_from, message.to_addr, before_final_dot)
            outcomes.sent(message.id)
        except Taken:
            # Mid-DATA without the final dot: only closing the connection aborts it.
            self._drop()
        except smtplib.SMTPRecipientsRefused as e:
            code = next(iter(e.recipients.values()))[0]
            outcomes.refused(message, f"recipient refused: {e.recipients}", code)
            self.smtp = _reset(self.smtp)
        except smtplib.SMTPResponseException as e:
            if handed_over:  # refused at the final dot: the server did not take it
                _take_back(self.handovers, message.id)
            outcomes.refused(message, f"{e.smtp_code} {e.smtp_error!r}", e.smtp_code)
            self.smtp = _reset(self.smtp)
        except (OSError, smtplib.SMTPException) as e:
            # Connection lost or refused: leave this and the rest for the next run. A message
            # handed over stays recorded as sent (the dot may have gone out).
            if handed_over:
                outcomes.sent(message.id)
            current_app.logger.warning("SMTP unavailable, outbox left pending: %s", e)
            self.smtp = None
            return False
        except BaseException:
            # Anything else (the database lost while handing over…) may leave the connection
            # inside DATA, where QUIT would be read as message text and wait for the timeout:
            # closing it aborts the unfinished message, which stays pending.
            self._drop()
            raise
        return True

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def _compose(self, message) -> bytes:
        """The bytes of a message composed without them, built from its row and its creditor."""
        if message.creditor_id not in self.creditors:
            self.creditors[message.creditor_id] = self.handovers.execute(
                select(Creditor.__table__).where(Creditor.id == message.creditor_id)).one()
        full = self.handovers.execute(select(OUTBOX).where(OUTBOX.c.id == message.id)).one()
        return smtp_bytes(full, self.creditors[message.creditor_id])

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None


def send_pending(limit: int | None = None) -> Sent:
    """Send what is due in the outbox, batch by batch: claim, then for each message hand over,
    send, and note its outcome; record the batch. Stops at the first connection failure (server
    down): the rest stays pending, untouched, for the next run."""
    totals = Sent()
    db.session.commit()  # what the caller has pending, as when this ran in its session
    # Connections of the run's own: a session checks one out of the pool (and pings it) for
    # every transaction, and ORM statements cost several times Core's CPU. On PostgreSQL the
    # handovers go through a second one in autocommit (the claim's transaction stays open);
    # SQLite, one writer, does everything on one.
    postgres = db.engine.dialect.name == "postgresql"
    batches = _Batches(db.engine, threaded=postgres)
    handovers = (db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") if postgres
                 else batches.connections[0])
    mailer = None
    try:
        mailer = _Mailer(current_app.config["SMTP_URL"], _address(current_app.config["MAIL_FROM"]), handovers)
        _recover(batches.connections[0])
        size = BATCH if limit is None else min(BATCH, limit)
        batches.start(size)
        stop = False
        while not stop:
            connection, messages = batches.next()
            if not messages:
                batches.record(connection, _Outcomes(totals), 0)
                break
            outcomes = _Outcomes(totals)
            started = time.monotonic()
            for message in messages:
                if limit is not None and totals.sent + totals.failed >= limit:
                    stop = True
                    break
                if time.monotonic() - started > BATCH_SECONDS:
                    break  # the rest goes back to the queue when this batch commits
                if not mailer.send(message, outcomes):
                    stop = True
                    break
            batches.record(connection, outcomes, 0 if stop else size)
        batches.finish()
    finally:
        batches.close()
        if handovers not in batches.connections:
            handovers.close()
        if mailer is not None:
            mailer.close()
    return totals


def _reset(smtp):
    try:
        smtp.rset()
        return smtp
    except (OSError, smtplib.SMTPException):
        return None


def _address(header: str) -> str:
    return parseaddr(header)[1] or header
