"""SMTP refusing, then accepting; a dunning worker SIGKILLed while it plans (PostgreSQL, private
server). Real `flask --app app dunning …` processes against a real SMTP server.

- Refusals (4xx at RCPT TO, then 4xx at the final dot after the message was handed over) defer
  every message with backoff; a run before the next attempt time sends nothing; once the server
  accepts, each message goes out once and the event log says "sent" once per reminder.
- A run killed inside its planning transaction leaves nothing planned; the next run plans and
  sends the whole day once. (Kills while sending: tests/integration/test_dunning_crash.py.)
"""
from __future__ import annotations

import signal
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from fakes.cli_process import app_env, flask, json_line
from fakes.smtp_server import Handler, Received, SmtpServer
from fault_support import (assert_dunning_exactly_once, backends, count, database_url, engine_name,  # noqa: F401
                           hold_planner_lock, private_pg, seed_dunning, wait_until, waiting_on_planner_lock)
from portal.extensions import db
from portal.models import Event, OutboxHandover, OutboxMessage, Reminder, utcnow

D = date(2026, 3, 16)
RUN_ZERO = {"date": D.isoformat(), "planned": 0, "sent": 0, "awaiting_approval": 0, "failed": 0, "held": 0}


class RefusingHandler(Handler):
    """Refuses every message with a 4xx, at RCPT TO ("rcpt") or at the final dot ("data"),
    until `mode` is None. A message refused at the dot is not kept: the server did not take it."""
    mode: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "rcpt":
            return "451 4.3.0 Mailbox temporarily unavailable, try later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "data":
            return "451 4.3.0 Queue full, try later"
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def refusing_smtp():
    server = SmtpServer()
    server.handler = RefusingHandler()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def outbox() -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def due_now() -> None:
    """Instead of waiting for the backoff: every pending message's next attempt is now."""
    db.session.execute(update(OutboxMessage).where(OutboxMessage.status == "pending")
                       .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def test_smtp_refusing_then_accepting_sends_everything_once(app, creditor, refusing_smtp, private_pg):
    expected = seed_dunning(creditor.id, D, debtors=6)
    debtors_due = len({n.rsplit("-", 1)[0] for n in expected})
    db.session.remove()
    env = app_env(private_pg.url, refusing_smtp.url)
    handler = refusing_smtp.handler

    # 1. Refused at RCPT: planned and composed, nothing sent, each message deferred ~1 minute.
    handler.mode = "rcpt"
    first = json_line(flask("dunning", "run", "--date", D.isoformat(), env=env))
    assert first == {**RUN_ZERO, "planned": len(expected)}
    msgs = outbox()
    assert len(msgs) == debtors_due
    assert {(m.status, m.attempts) for m in msgs} == {("pending", 1)}
    assert all(timedelta(seconds=50) < m.next_attempt_at - utcnow() <= timedelta(minutes=1) for m in msgs)
    assert all("451" in m.last_error for m in msgs)
    # Before the next attempt time nothing is tried, even with the server accepting.
    handler.mode = None
    assert json_line(flask("dunning", "send", env=env)) == {"sent": 0, "failed": 0, "deferred": 0}
    assert json_line(flask("dunning", "run", "--date", D.isoformat(), env=env)) == RUN_ZERO
    assert handler.messages == []

    # 2. Refused at the final dot, after each was handed over: taken back, backoff doubled.
    handler.mode = "data"
    due_now()
    assert json_line(flask("dunning", "send", env=env)) == {"sent": 0, "failed": 0, "deferred": debtors_due}
    msgs = outbox()
    assert {(m.status, m.attempts) for m in msgs} == {("pending", 2)}
    assert all(timedelta(seconds=110) < m.next_attempt_at - utcnow() <= timedelta(minutes=2) for m in msgs)
    assert set(db.session.scalars(select(Reminder.status))) == {"planned"}
    assert handler.messages == []
    assert db.session.scalars(select(OutboxHandover)).all() == []  # taken back
    # Nothing was recorded sent: a message is recorded once the server has answered 250.
    assert db.session.scalars(select(Event).where(Event.type.in_(("reminder.sent", "message.sent")))).all() == []

    # 3. Accepting: everything sent once, on the third attempt.
    handler.mode = None
    due_now()
    assert json_line(flask("dunning", "send", env=env)) == {"sent": debtors_due, "failed": 0, "deferred": 0}
    assert json_line(flask("dunning", "send", env=env)) == {"sent": 0, "failed": 0, "deferred": 0}
    assert {(m.status, m.attempts) for m in outbox()} == {("sent", 3)}
    assert_dunning_exactly_once(expected, handler.messages)
    assert len(handler.messages) == debtors_due
    # Every reminder has its "sent" event, once.
    sent_events = Counter(db.session.scalars(select(Event.invoice_id).where(Event.type == "reminder.sent")))
    assert len(sent_events) == len(expected) and set(sent_events.values()) == {1}


def test_worker_killed_while_planning_loses_nothing(app, creditor, private_pg):
    from fakes.smtp_server import SmtpServer as Plain
    smtp = Plain().start()
    try:
        expected = seed_dunning(creditor.id, D, debtors=10)
        debtors_due = len({n.rsplit("-", 1)[0] for n in expected})
        db.session.remove()
        env = app_env(private_pg.url, smtp.url)

        lock = hold_planner_lock(private_pg, creditor.id)
        try:
            run = flask("dunning", "run", "--date", D.isoformat(), env=env)
            wait_until(lambda: waiting_on_planner_lock(private_pg), what="the run to wait on the planner lock")
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
            assert run.returncode == -signal.SIGKILL
        finally:
            lock.close()
        # A session waiting on a lock notices its client is gone only once it has the lock and
        # talks to it again: then PostgreSQL rolls its transaction back and ends it.
        wait_until(lambda: not backends(private_pg, "backend_type = 'client backend' AND state <> 'idle'"),
                   what="the killed run's session to end")
        assert count(Reminder) == 0 and count(OutboxMessage) == 0
        assert smtp.handler.messages == []

        again = json_line(flask("dunning", "run", "--date", D.isoformat(), env=env))
        assert again == {**RUN_ZERO, "planned": len(expected), "sent": debtors_due}
        assert json_line(flask("dunning", "run", "--date", D.isoformat(), env=env)) == RUN_ZERO
        assert_dunning_exactly_once(expected, smtp.handler.messages)
        assert len(smtp.handler.messages) == debtors_due
    finally:
        smtp.stop()
