"""The outbox's records in the database: claims, handovers, messages recorded sent or refused.

A batch is claimed locked (FOR UPDATE SKIP LOCKED) and recorded in the claim's transaction; each
message's handover (outbox_handover) is committed on a connection of its own just before its final
dot, so a crash leaves either a pending message or a handover that the next run records sent
(recover). See dunning_jobs/outbox.py for the sending side and the guarantees.
"""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg import pq
from sqlalchemy import bindparam, case, delete, select, text, update

from portal.models import Creditor, OutboxHandover, OutboxMessage, Reminder, UTCDateTime, utcnow
from portal.services import events, ladder
from portal.services.ladder import climb_sql, ladder_rung, ladder_rung_sql

MAX_ATTEMPTS = 8
BASE_BACKOFF = timedelta(minutes=1)

OUTBOX = OutboxMessage.__table__
HANDOVER = OutboxHandover.__table__


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, capped at 6 hours."""
    return min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), timedelta(hours=6))



#: what sending needs of a message (its bodies and attachment only when its bytes were not stored)
CLAIMED = [OUTBOX.c[k] for k in ("id", "creditor_id", "debtor_id", "kind", "channel", "to_addr", "raw", "attempts")] + [
    # an SMS's text (a select of its own would cost a round trip while nothing else goes on)
    case((OUTBOX.c.channel == "sms", OUTBOX.c.text_body), else_=None).label("sms_body")]


def claim(connection, size: int):
    """The next `size` due messages as plain rows (no ORM object: one per message adds up), locked
    until the caller commits. Due order, read straight off the (status, next_attempt_at) index.
    Handovers are not excluded here (an anti-join would read every pending message per claim):
    those of killed senders are recorded before the first claim (recover), and one whose sender
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


class HandOver:
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


def take_back(connection, message_id: int) -> None:
    """The server refused the message at its final dot: not handed over after all."""
    connection.execute(delete(HANDOVER).where(HANDOVER.c.message_id == message_id))
    _commit(connection)


def _autocommit(connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _commit(connection) -> None:
    if not _autocommit(connection):
        connection.commit()


def _record_events(connection, message, *rows, at=None) -> None:
    """Events about `message` in one INSERT on the sender's connection, each (type, invoice id, data)."""
    events.record_many([{"creditor_id": message.creditor_id, "debtor_id": message.debtor_id,
                         "invoice_id": invoice_id, "type": type, "actor": "system",
                         "data": {"message_id": message.id, **data}, **({"at": at} if at else {})}
                        for type, invoice_id, data in rows], connection=connection)


# PostgreSQL: handovers deleted, their messages, reminders, events and the invoices' rungs
# (portal/services/ladder.py) recorded sent in one statement, however many messages (SQLite, in
# process, takes five statements a message). The day a rung was sent: the day its reminder was
# planned for, moved by the calendar days (creditor's time zone) it waited between planning and
# the server's acceptance (a server down overnight, an approval days later).
RECORD_SENT_PG = text(f"""
WITH h AS (DELETE FROM outbox_handover WHERE message_id = ANY(:ids) RETURNING message_id, handed_at),
     m AS (UPDATE outbox_message o SET status = 'sent', sent_at = h.handed_at, attempts = o.attempts + 1,
                  last_error = NULL
           FROM h WHERE o.id = h.message_id AND o.status = 'pending'
           RETURNING o.id, o.creditor_id, o.debtor_id, o.kind, o.channel, o.sent_at),
     r AS (UPDATE reminder SET status = 'sent' FROM m WHERE reminder.message_id = m.id
           RETURNING reminder.message_id, reminder.invoice_id, reminder.step_code, reminder.rung,
                     reminder.dunning_date, reminder.created_at),
     rungs AS (SELECT r.invoice_id, {ladder_rung_sql("r.rung", "r.step_code")} AS rung, r.dunning_date + GREATEST(0, (m.sent_at AT TIME ZONE c.timezone)::date
                      - (r.created_at AT TIME ZONE c.timezone)::date) AS day
               FROM r JOIN m ON m.id = r.message_id JOIN creditor c ON c.id = m.creditor_id),
     i AS ({climb_sql("rungs")}),
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


def _sent_on(connection, creditor_id: int, dunning_date: date, planned_at, sent_at, zones: dict) -> date:
    """SQLite's take on the day computed in RECORD_SENT_PG, in Python (SQLite knows no time zones)."""
    if creditor_id not in zones:
        zones[creditor_id] = ZoneInfo(connection.execute(
            select(Creditor.timezone).where(Creditor.id == creditor_id)).scalar_one())
    zone = zones[creditor_id]
    waited = (sent_at.astimezone(zone).date() - planned_at.astimezone(zone).date()).days
    return dunning_date + timedelta(days=max(0, waited))


def record_sent(connection, ids: list[int]) -> None:
    """Handed-over messages recorded sent: status, sent_at (the handover's time), reminders,
    events, the invoices' rungs; their handover rows deleted. The caller commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(RECORD_SENT_PG, {"ids": ids})
        return
    zones: dict = {}
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
            .returning(Reminder.invoice_id, Reminder.step_code, Reminder.rung, Reminder.dunning_date,
                       Reminder.created_at)).all()
        ladder.record_sends(connection, [
            (row.invoice_id, ladder_rung(row.rung, row.step_code),
             _sent_on(connection, message.creditor_id, row.dunning_date, row.created_at, handed_at, zones))
            for row in rows if ladder_rung(row.rung, row.step_code) is not None])
        _record_events(connection, message,
                *[("thank_you.sent" if row.step_code == "thank_you" else "reminder.sent", row.invoice_id,
                   {"step": row.step_code, "channel": message.channel}) for row in rows]
                or [("message.sent", None, {"kind": message.kind})], at=handed_at)


def recover(connection) -> None:
    """Record sent what killed senders handed over: handover rows whose message no live sender
    holds locked (a live one keeps its batch locked until it has recorded them itself). An
    SMS's handover is not proof it went: outbox_sms.recover looks those up at Twilio."""
    ids = connection.execute(
        select(HANDOVER.c.message_id).join(OUTBOX, OUTBOX.c.id == HANDOVER.c.message_id)
        .where(OUTBOX.c.channel != "sms")
        .with_for_update(skip_locked=True, of=OUTBOX)).scalars().all()
    if ids:
        record_sent(connection, ids)
    connection.commit()


def settle_failure(connection, message, error: str, code: int) -> None:
    """Record a refusal: 4xx retries later with backoff, 5xx (or too many attempts) fails.
    The caller commits."""
    error = error[:2000]
    attempts = message.attempts + 1
    values = {"attempts": attempts, "last_error": error}
    if code >= 500 or attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
        connection.execute(
            update(Reminder.__table__).where(Reminder.message_id == message.id).values(status="failed"))
        _record_events(connection, message, ("message.failed", None, {"kind": message.kind, "error": error[:300]}))
    else:
        values["next_attempt_at"] = utcnow() + backoff(attempts)
    connection.execute(update(OUTBOX).where(OUTBOX.c.id == message.id).values(**values))
