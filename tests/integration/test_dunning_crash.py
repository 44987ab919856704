"""DESIGN: "A crash loses nothing and sends nothing twice."

The outbox is sent by a real `flask --app app dunning send` process, SIGKILLed three times in
the middle of its batch, at points a real SMTP server (slowed down, and holding the client where
the test asks) makes certain: waiting for the answer to RCPT TO, waiting for the 354 after DATA
(nothing of the message sent yet), and after the server has stored a message but before it
answered 250 (the client has done everything it does before the final dot, commit included).
After each kill, what the database says was sent is exactly what the server has; a last run
delivers the rest. In the end the server holds each outbox message once.
"""
from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, or_, select, text

from dunning_jobs import day as dunning_day
from fakes.cli_process import app_env, flask, json_line
from fakes.slow_smtp import SlowSmtpServer
from portal.extensions import db
from portal.models import Creditor, OutboxHandover, OutboxMessage, Reminder
from portal.services import ledger

D = date(2026, 4, 10)
DEBTORS = 12
#: where each kill lands: (phase the server holds the client in, how many more of it first)
KILLS = [("rcpt", 3), ("data", 3), ("accepted", 2)]


@pytest.fixture
def slow_smtp():
    server = SlowSmtpServer(delay=0.05).start()
    try:
        yield server
    finally:
        server.stop()


def seed_and_compose(creditor_id: int) -> int:
    """Debtors with overdue invoices, planned and composed for D but not sent."""
    creditor = db.session.get(Creditor, creditor_id)
    for n in range(DEBTORS):
        ledger.upsert_debtor(creditor, f"K{n}", {"name": f"Client {n}", "email": f"k{n}@example.com",
                                                  "language": "en" if n % 2 else "fr"})
        for k, age in enumerate((1, 8 if n % 3 else 1)):
            due = D - timedelta(days=age)
            ledger.upsert_invoice(creditor, f"K{n}-{k}", {"debtor_ref": f"K{n}", "issue_date": "2026-01-01",
                                                         "due_date": due.isoformat(), "amount": "120.00",
                                                         "currency": "EUR"})
    result = dunning_day.DayResult(date=D.isoformat())
    dunning_day.plan_creditor(creditor, D, result)
    assert result.planned == 2 * DEBTORS
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending"))


def sent_ids() -> set[str]:
    """What the database says was sent: recorded sent, or handed over (committed before the final
    dot) by a sender killed before it recorded the message; the next run records those."""
    db.session.commit()  # a fresh snapshot
    handed = select(OutboxHandover.message_id)
    return set(db.session.scalars(select(OutboxMessage.message_id_header).where(
        or_(OutboxMessage.status == "sent", OutboxMessage.id.in_(handed)))))


def wait_for_dead_sessions(engine_name: str) -> None:
    """PostgreSQL ends a killed client's transaction (and its row locks) when it sees the socket
    close; wait for that rather than let the next sender skip a still-locked row."""
    if engine_name != "postgresql":
        return
    for _ in range(1000):
        busy = db.session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"))
        db.session.commit()
        if not busy:
            return
        time.sleep(0.01)
    raise AssertionError("a killed sender's transaction is still open")


def test_sender_killed_mid_batch_loses_nothing_and_sends_nothing_twice(app, creditor, slow_smtp, database_url,
                                                                         engine_name):
    total = seed_and_compose(creditor.id)
    assert total == DEBTORS
    outbox_ids = set(db.session.scalars(select(OutboxMessage.message_id_header)))
    db.session.remove()
    env = app_env(database_url, slow_smtp.url)
    handler = slow_smtp.handler

    for phase, more in KILLS:
        before = len(handler.messages)
        handler.hold(phase, handler.counts[phase] + more)
        sender = flask("dunning", "send", env=env)
        try:
            assert handler.held.wait(45), f"the sender never reached {phase}: {sender.communicate(timeout=5)}"
            sender.send_signal(signal.SIGKILL)
            sender.communicate(timeout=30)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
            handler.release()
        assert sender.returncode == -signal.SIGKILL
        wait_for_dead_sessions(engine_name)
        received = [r.message["Message-ID"] for r in handler.messages]
        assert len(received) > before, f"the sender made no progress before the kill at {phase}"
        # Killed at any of these points, the database and the server agree on what was sent.
        assert sent_ids() == set(received), f"after the kill at {phase}"

    # The next run delivers the rest, and only the rest.
    already = len(handler.messages)
    handler.delay = 0
    last = json_line(flask("dunning", "send", env=env))
    assert last == {"sent": total - already, "failed": 0, "deferred": 0}

    received = Counter(r.message["Message-ID"] for r in handler.messages)
    assert [mid for mid, n in received.items() if n > 1] == []  # nothing sent twice
    assert set(received) == outbox_ids  # nothing lost
    assert Counter(tuple(r.rcpt_tos) for r in handler.messages) == Counter(
        (f"k{n}@example.com",) for n in range(DEBTORS))
    assert sent_ids() == outbox_ids
    assert set(db.session.scalars(select(OutboxMessage.status))) == {"sent"}  # every handover recorded
    assert db.session.scalars(select(OutboxHandover)).all() == []
    assert set(db.session.scalars(select(Reminder.status))) == {"sent"}
    assert json_line(flask("dunning", "send", env=env)) == {"sent": 0, "failed": 0, "deferred": 0}
    assert sum(received.values()) == total
