"""Durable outbox -> SMTP (SMS: Twilio, outbox_sms.py), after commit, one connection per run, messages in batches.

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
  killed sender is recorded sent by the next run (outbox_records.recover).
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
from email.utils import parseaddr
from urllib.parse import unquote, urlparse

from flask import current_app
from sqlalchemy import select

from dunning_jobs import outbox_sms
from dunning_jobs.outbox_records import (HANDOVER, OUTBOX, HandOver, Taken, claim, record_sent, recover,
                                         settle_failure, take_back)
from portal import gateways
from portal.extensions import db
from portal.models import Creditor, utcnow
from portal.services import events
from portal.services.reminders import smtp_bytes

#: messages claimed at once, and how long a batch may keep them (and its reminders) locked
BATCH = 50
BATCH_SECONDS = 5.0



@dataclass
class Sent:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


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
        try:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        except BaseException:
            smtp.close()
            raise
    return smtp


class _Outcomes:
    """What a batch did, recorded once it is over: the messages handed over and accepted (to be
    recorded sent) and the refusals; the run's totals counted as it goes."""

    def __init__(self, totals: Sent):
        self.totals = totals
        self.sent_ids: list[int] = []
        self.refusals: list[tuple] = []  # (message, error, SMTP code)
        self.broken: list[dict] = []  # events of messages that could not be built
        self.sids: dict[int, str] = {}  # SMS sent: Twilio's id of each (outbox_sms)
        self.uncertain: list[tuple] = []  # SMS without a clear answer: (message, error)

    def sent(self, message_id: int) -> None:
        self.sent_ids.append(message_id)
        self.totals.sent += 1

    def unbuildable(self, message, error: Exception) -> None:
        """A message whose e-mail cannot be built: failed (as a permanent refusal), and its
        creditor's back office told (dunning.failed, at the sending stage)."""
        self.refused(message, f"cannot be built: {type(error).__name__}: {error}", 554)
        self.broken.append({"creditor_id": message.creditor_id, "debtor_id": message.debtor_id,
                            "type": "dunning.failed", "actor": "system",
                            "data": {"stage": "sending", "message_id": message.id, "date": utcnow().date().isoformat(),
                                     "error_type": type(error).__name__, "error": str(error)[:500]}})

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
            self.ready.put((connection, claim(connection, size)))

    def next(self):
        """The next claimed batch, with its connection (waits for the recorder to hand it back)."""
        connection, messages = self.ready.get()
        if self.error is not None:
            self.ready.put((connection, []))
            raise self.error
        return connection, messages

    def record(self, connection, outcomes: _Outcomes, next_size: int) -> None:
        """Record the batch claimed on `connection` and commit it (which releases its locks), then
        claim the next `next_size` messages there."""
        if self.jobs is None:
            self._record(connection, outcomes, next_size)
        else:
            self.jobs.put((connection, outcomes, next_size))

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

    def _record(self, connection, outcomes: _Outcomes, next_size: int) -> None:
        if outcomes.sent_ids:
            record_sent(connection, outcomes.sent_ids)
        for message, error, code in outcomes.refusals:
            settle_failure(connection, message, error, code)
        outbox_sms.record(connection, outcomes.sids, outcomes.uncertain)
        events.record_many(outcomes.broken, connection=connection)
        connection.commit()
        self.ready.put((connection, claim(connection, next_size) if next_size else []))

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            connection, outcomes, next_size = job
            try:
                if self.error is None:
                    self._record(connection, outcomes, next_size)
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
        self.hand_over = HandOver(handovers)
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

        try:
            raw = message.raw if message.raw is not None else self._compose(message)
        except Exception as e:  # noqa: BLE001 (one creditor's message that cannot be built stops no other)
            current_app.logger.exception("outbox message %s cannot be built", message.id)
            outcomes.unbuildable(message, e)
            return True
        handed_over = False

        def before_final_dot():
            nonlocal handed_over
            self.hand_over(message.id)
            handed_over = True

        if self.smtp is None:
            try:
                self.smtp = connect(self.smtp_url)
            except (OSError, smtplib.SMTPException) as e:
                # Refused at the greeting or the login (535 is a code, but of the server's answer to
                # us, not to this message): the server is unavailable, every message stays pending.
                current_app.logger.warning("SMTP unavailable, outbox left pending: %s", e)
                return False
        try:
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
                take_back(self.handovers, message.id)
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


def _anything_to_send() -> bool:
    """A message due, or a handover a killed sender left: else a pass has nothing to do, and opens
    no connection of its own, no thread. Read without locks: what becomes due after this look goes
    with the next pass, as it would after the first claim."""
    due = select(OUTBOX.c.id).where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= utcnow()).limit(1)
    try:
        return bool(db.session.scalar(select(due.exists() | select(HANDOVER.c.message_id).limit(1).exists())))
    finally:
        db.session.commit()


def send_pending(limit: int | None = None) -> Sent:
    """Send what is due in the outbox, batch by batch: claim, then for each message hand over,
    send, and note its outcome; record the batch. Stops at the first connection failure (server
    down): the rest stays pending, untouched, for the next run."""
    totals = Sent()
    db.session.commit()  # what the caller has pending, as when this ran in its session
    if not _anything_to_send():
        return totals
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
        texter = outbox_sms.Texter(gateways.sms(), mailer.hand_over, handovers)
        outbox_sms.recover(batches.connections[0], texter.gateway)  # before recover, which takes the rest
        recover(batches.connections[0])
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
                if not (texter if message.channel == "sms" else mailer).send(message, outcomes):
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
