"""Durable outbox -> SMTP, after commit, one connection per batch.

A batch of due messages is claimed with FOR UPDATE SKIP LOCKED, so concurrent senders
never take the same one; the claim's transaction keeps those row locks until the batch ends.
Exactly-once as far as SMTP allows: the body is streamed, then the handover (outbox_handover,
one guarded insert on a connection in autocommit: one round trip) is committed, and only then
the final "." that makes the server accept it goes out. A crash before that commit leaves the
server with an unfinished transaction, which it discards, and the message still pending. The one
window left is between that commit and the dot going out (a single send() call): a crash exactly
there loses the message, recorded as sent — the trade chosen over a duplicate reminder.
After the server's answer the message is recorded sent (its status, reminders and events, its
handover row deleted) in the claim's transaction; on PostgreSQL a thread does that while the next
message goes out, so the server only ever waits for the one insert. A handover left by a killed
sender is recorded sent by the next run (its messages are no longer locked: see _recover).
The handover is guarded: on PostgreSQL by the claim's lock and its primary key, on SQLite, which
has no row locks, by a check that the message is still pending; there two senders can claim the
same message, and the one that loses the guard drops its connection instead of sending the dot.
The e-mail's bytes are built when the message is composed (OutboxMessage.raw); a message without
them is built here.
Temporary failures (4xx) retry with exponential backoff; permanent ones (5xx) are recorded.
Without SMTP_URL the outbox is the mailbox: messages are marked delivered there.
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


#: what sending needs of a message (its bodies and attachment only when its bytes were not stored)
CLAIMED = [OUTBOX.c[k] for k in ("id", "creditor_id", "debtor_id", "kind", "channel", "to_addr", "raw", "attempts")]


def _claim(c, n: int):
    """The next `n` due messages as plain rows (no ORM object: one per message adds up), locked
    until the caller commits. Due order, read straight off the (status, next_attempt_at) index
    (ordered by id, PostgreSQL walked the primary key past every message already sent).
    Handovers are not excluded here (that anti-join
    made PostgreSQL read every pending message per claim): those of killed senders are recorded
    before the first claim (_recover), and one whose sender died since fails its guard (Taken)."""
    return c.execute(
        select(*CLAIMED).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= utcnow())
        .order_by(OUTBOX.c.next_attempt_at).limit(n)
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
    the dot, and the driver's cursor took more CPU than the insert: ~45 against ~15 µs)."""

    def __init__(self, h):
        self.h, self.pgconn = h, None
        if _autocommit(h):
            self.pgconn = h.connection.driver_connection.pgconn
            res = self.pgconn.prepare(HAND_OVER_NAME, HAND_OVER_LOCKED)
            # A pooled connection may have it from an earlier run: the same statement.
            if (res.status != pq.ExecStatus.COMMAND_OK
                    and res.error_field(pq.DiagnosticField.SQLSTATE) != DUPLICATE_PREPARED_STATEMENT):
                raise psycopg.errors.error_from_result(res)

    def __call__(self, message_id: int) -> None:
        if self.pgconn is None:
            taken = self.h.execute(HAND_OVER, {"id": message_id, "now": utcnow()}).first() is None
            self.h.commit()
        else:
            res = self.pgconn.exec_prepared(HAND_OVER_NAME, [b"%d" % message_id, utcnow().isoformat().encode()])
            if res.status != pq.ExecStatus.TUPLES_OK:
                raise psycopg.errors.error_from_result(res)
            taken = res.ntuples == 0
        if taken:
            raise Taken(message_id)


def _take_back(h, message_id: int) -> None:
    """The server refused the message at its final dot: not handed over after all."""
    h.execute(delete(HANDOVER).where(HANDOVER.c.message_id == message_id))
    _commit(h)


def _autocommit(h) -> bool:
    return h.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _commit(h) -> None:
    if not _autocommit(h):
        h.commit()


def _record(c, msg, *rows, at=None) -> None:
    """Events about `msg` in one INSERT on the sender's connection, each (type, invoice id, data)."""
    events.record_many([{"creditor_id": msg.creditor_id, "debtor_id": msg.debtor_id, "invoice_id": invoice_id,
                         "type": type, "actor": "system", "data": {"message_id": msg.id, **data},
                         **({"at": at} if at else {})}
                        for type, invoice_id, data in rows], connection=c)


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


def _record_sent(c, ids: list[int]) -> None:
    """Handed-over messages recorded sent: status, sent_at (the handover's time), reminders,
    events; their handover rows deleted. The caller commits."""
    if c.dialect.name == "postgresql":
        c.execute(RECORD_SENT_PG, {"ids": ids})
        return
    for message_id in ids:
        handed_at = c.execute(delete(HANDOVER).where(HANDOVER.c.message_id == message_id)
                              .returning(HANDOVER.c.handed_at)).scalar()
        msg = handed_at and c.execute(
            update(OUTBOX).where(OUTBOX.c.id == message_id, OUTBOX.c.status == "pending")
            .values(status="sent", sent_at=handed_at, attempts=OUTBOX.c.attempts + 1, last_error=None)
            .returning(OUTBOX.c.id, OUTBOX.c.creditor_id, OUTBOX.c.debtor_id, OUTBOX.c.kind,
                       OUTBOX.c.channel)).first()
        if not msg:
            continue
        rows = c.execute(
            update(Reminder.__table__).where(Reminder.message_id == message_id).values(status="sent")
            .returning(Reminder.invoice_id, Reminder.step_code)).all()
        _record(c, msg, *[("thank_you.sent" if step == "thank_you" else "reminder.sent", invoice_id,
                           {"step": step, "channel": msg.channel}) for invoice_id, step in rows]
                or [("message.sent", None, {"kind": msg.kind})], at=handed_at)


def _recover(c) -> None:
    """Record sent what killed senders handed over: handover rows whose message no live sender
    holds locked (a live one keeps its batch locked until it has recorded them itself)."""
    ids = c.execute(select(HANDOVER.c.message_id).join(OUTBOX, OUTBOX.c.id == HANDOVER.c.message_id)
                    .with_for_update(skip_locked=True, of=OUTBOX)).scalars().all()
    if ids:
        _record_sent(c, ids)
    c.commit()


def _settle_failure(c, msg, error: str, code: int) -> None:
    """Record a refusal: 4xx retries later with backoff, 5xx (or too many attempts) fails.
    The caller commits."""
    error = error[:2000]
    attempts = msg.attempts + 1
    values = {"attempts": attempts, "last_error": error}
    if code >= 500 or attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
        c.execute(update(Reminder.__table__).where(Reminder.message_id == msg.id).values(status="failed"))
        _record(c, msg, ("message.failed", None, {"kind": msg.kind, "error": error[:300]}))
    else:
        values["next_attempt_at"] = utcnow() + backoff(attempts)
    c.execute(update(OUTBOX).where(OUTBOX.c.id == msg.id).values(**values))


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

    def start(self, n: int) -> None:
        for c in self.connections:
            self.ready.put((c, _claim(c, n)))

    def next(self):
        """The next claimed batch, with its connection (waits for the recorder to hand it back)."""
        c, batch = self.ready.get()
        if self.error is not None:
            self.ready.put((c, []))
            raise self.error
        return c, batch

    def record(self, c, ops: list, claim: int) -> None:
        """Record the batch claimed on `c` and commit it (which releases its locks), then claim
        the next `claim` messages there."""
        if self.jobs is None:
            self._record(c, ops, claim)
        else:
            self.jobs.put((c, ops, claim))

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
        for c in self.connections:
            c.close()  # anything not committed rolls back: handovers stay, for the next run

    def _record(self, c, ops: list, claim: int) -> None:
        sent = [op[1] for op in ops if op[0] == "sent"]
        if sent:
            _record_sent(c, sent)
        for op in ops:
            if op[0] == "failed":
                _settle_failure(c, *op[1:])
        c.commit()
        self.ready.put((c, _claim(c, claim) if claim else []))

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            c, ops, claim = job
            try:
                if self.error is None:
                    self._record(c, ops, claim)
                    continue
            except BaseException as e:  # noqa: BLE001 (raised in the sender's thread)
                self.error = e
                c.rollback()
            self.ready.put((c, []))


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
    # Connections of the run's own: a session checks one out of the pool (and pings it) for
    # every transaction, and ORM statements cost several times Core's CPU. On PostgreSQL the
    # handovers go through a second one in autocommit (the claim's transaction stays open);
    # SQLite, one writer, does everything on one.
    pg = db.engine.dialect.name == "postgresql"
    batches = _Batches(db.engine, threaded=pg)
    h = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") if pg else batches.connections[0]
    conn = None
    try:
        hand_over = _HandOver(h)
        _recover(batches.connections[0])
        size = BATCH if limit is None else min(BATCH, limit)
        batches.start(size)
        stop = False
        while not stop:
            c, batch = batches.next()
            if not batch:
                batches.record(c, [], 0)
                break
            ops: list = []  # what the batch did, recorded once it is over
            started = time.monotonic()
            for msg in batch:
                if limit is not None and result.sent + result.failed >= limit:
                    stop = True
                    break
                if time.monotonic() - started > BATCH_SECONDS:
                    break  # the rest goes back to the queue when this batch commits
                if url is None:
                    try:
                        hand_over(msg.id)
                        ops.append(("sent", msg.id))
                        result.sent += 1
                    except Taken:
                        pass
                    continue
                raw = msg.raw
                if raw is None:
                    if msg.creditor_id not in creditors:
                        creditors[msg.creditor_id] = h.execute(
                            select(Creditor.__table__).where(Creditor.id == msg.creditor_id)).one()
                    full = h.execute(select(OUTBOX).where(OUTBOX.c.id == msg.id)).one()
                    raw = smtp_bytes(full, creditors[msg.creditor_id])
                handed = False

                def before_final_dot():
                    nonlocal handed
                    hand_over(msg.id)
                    handed = True

                try:
                    if conn is None:
                        conn = connect(url)
                    _deliver(conn, raw, sender, msg.to_addr, before_final_dot)
                    ops.append(("sent", msg.id))
                    result.sent += 1
                except Taken:
                    # Mid-DATA without the final dot: only closing the connection aborts it.
                    conn.close()
                    conn = None
                except smtplib.SMTPRecipientsRefused as e:
                    code = next(iter(e.recipients.values()))[0]
                    ops.append(("failed", msg, f"recipient refused: {e.recipients}", code))
                    result.failed += code >= 500
                    result.deferred += code < 500
                    conn = _reset(conn)
                except smtplib.SMTPResponseException as e:
                    if handed:  # refused at the final dot: the server did not take it
                        _take_back(h, msg.id)
                    ops.append(("failed", msg, f"{e.smtp_code} {e.smtp_error!r}", e.smtp_code))
                    result.failed += e.smtp_code >= 500
                    result.deferred += e.smtp_code < 500
                    conn = _reset(conn)
                except (OSError, smtplib.SMTPException) as e:
                    # Connection lost or refused: leave this and the rest for the next run. A
                    # message handed over stays recorded as sent (the dot may have gone out).
                    if handed:
                        ops.append(("sent", msg.id))
                        result.sent += 1
                    current_app.logger.warning("SMTP unavailable, outbox left pending: %s", e)
                    conn = None
                    stop = True
                    break
                except BaseException:
                    # Anything else (the database lost while handing over…) may leave the
                    # connection inside DATA, where QUIT would be read as message text and wait
                    # for the timeout: closing it aborts the unfinished message, which stays pending.
                    if conn is not None:
                        conn.close()
                        conn = None
                    raise
            batches.record(c, ops, 0 if stop else size)
        batches.finish()
    finally:
        batches.close()
        if h not in batches.connections:
            h.close()
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
