"""CONTRACT §3: `dunning run` is "safe to run from several processes or machines at once".

Four real `flask --app app dunning run --date D` processes start together on one PostgreSQL
database and one real SMTP server. Whatever the interleaving, every (invoice, step) is planned
once, every debtor gets at most one reminder e-mail that day, the server receives each message
exactly once, and the four JSON lines add up to what the server received. The invoices stand on
every rung of the ladder, sent at several distances, so every step of the plans is due for some.
"""
from __future__ import annotations

import os
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from dunning_jobs import day as dunning_day
from fakes.cli_process import app_env, flask, json_line
from fakes.slow_smtp import SlowSmtpServer
from portal.domain.schedule import Step, due_step
from portal.extensions import db
from portal.models import Creditor, Debtor, Invoice, OutboxMessage, Reminder
from portal.services import ledger
from portal.services.plans import DEFAULT_STEPS, PROFILE_OFFSETS

D = date(2026, 6, 15)
PROCESSES = 4
#: days late on D (negative: not yet due) of each debtor's five invoices, by debtor number modulo 8
AGES = [(-20, -7, 0, 1, 3), (-3, 1, 8, 9, 15), (5, 8, 15, 16, 30), (-10, -8, -7, 12, 20),
        (2, 4, 6, 8, 10), (-30, -15, -9, -8, -8), (30, 35, 40, 45, 60), (-7, -6, 1, 15, 31)]
PROFILES = ["standard", "standard", "risky", "standard", "key_account", "standard", "standard", "risky"]


POSTGRESQL_ONLY = pytest.mark.parametrize("engine_name", [
    pytest.param("sqlite", marks=pytest.mark.skip(
        reason="concurrent `dunning run` processes: PostgreSQL only (SQLite has no row locks, "
               "FOR UPDATE SKIP LOCKED nor advisory locks; its composers fail with 'database is locked')")),
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)")),
])


def expected_step(profile: str, age: int, reached: int, sent_ago: int) -> str | None:
    """The step of the debtor's plan the ladder (domain/schedule.py) plans on D for an invoice
    `age` days late standing on rung `reached`, sent `sent_ago` days before D."""
    steps = [Step(code, position, offset) for position, ((code, *_), offset)
             in enumerate(zip(DEFAULT_STEPS, PROFILE_OFFSETS[profile][1]), 1)]
    step = due_step(steps, D - timedelta(days=age), D, reached, D - timedelta(days=sent_ago) if reached else None)
    return step.code if step else None


def seed(creditor_id: int) -> dict[tuple[str, str], str]:
    """40 debtors x 5 invoices; returns {(debtor ref, invoice number): expected step code}."""
    creditor = db.session.get(Creditor, creditor_id)
    expected = {}
    for n in range(40):
        ref, profile = f"C{n:02d}", PROFILES[n % 8]
        ledger.upsert_debtor(creditor, ref, {"name": f"Client {n}", "email": f"client{n}@example.com",
                                             "language": "fr" if n % 3 else "en", "profile": profile})
        for k, age in enumerate(AGES[n % 8]):
            number = f"F{n:02d}-{k}"
            due = D - timedelta(days=age)
            invoice, _ = ledger.upsert_invoice(creditor, number, {
                "debtor_ref": ref, "issue_date": (due - timedelta(days=30)).isoformat(),
                "due_date": due.isoformat(), "amount": f"{100 + n * 7 + k}.50", "currency": "EUR"})
            # Climbed as far as its age allows, at most rung 3, the last rung sent 7 or 16 days ago.
            reached, sent_ago = (min(3, (n + k) % 4, max(0, age // 8)), 7 if n % 2 else 16)
            invoice.rung_reached, invoice.rung_sent_on = reached, (D - timedelta(days=sent_ago) if reached else None)
            db.session.commit()
            step = expected_step(profile, age, reached, sent_ago)
            if step:
                expected[(ref, number)] = step
    return expected


@POSTGRESQL_ONLY
def test_four_concurrent_runs_send_each_reminder_once(app, creditor, smtp_server, database_url):
    expected = seed(creditor.id)
    formal = {key for key, step in expected.items() if step == "formal_notice"}
    mailed_debtors = {ref for (ref, _), step in expected.items() if step != "formal_notice"}
    # The data really exercises several steps, approvals and debtors with nothing due.
    assert set(expected.values()) == {code for code, *_ in DEFAULT_STEPS}
    assert formal and 0 < len(mailed_debtors) < 40
    db.session.remove()

    env = app_env(database_url, smtp_server.url, MAIL_FROM="Atelier Test <relances@atelier.test>")
    procs = [flask("dunning", "run", "--date", D.isoformat(), env=env) for _ in range(PROCESSES)]
    outputs = [json_line(p, timeout=600) for p in procs]

    # Every (invoice, step) planned exactly once, and exactly the expected ones.
    rows = db.session.execute(
        select(Debtor.ref, Invoice.number, Reminder.step_code, Reminder.status)
        .join(Invoice, Invoice.id == Reminder.invoice_id).join(Debtor, Debtor.id == Reminder.debtor_id)).all()
    per_pair = Counter((ref, number, step) for ref, number, step, _ in rows)
    assert all(count == 1 for count in per_pair.values())
    assert {(ref, number): step for ref, number, step, _ in rows} == expected
    statuses = {(ref, number): status for ref, number, _, status in rows}
    assert {k for k, s in statuses.items() if s == "awaiting_approval"} == formal
    assert all(s == "sent" for k, s in statuses.items() if k not in formal)

    # At most one reminder e-mail per debtor, all of them sent.
    messages = db.session.scalars(select(OutboxMessage)).all()
    assert Counter(m.debtor_id for m in messages).most_common(1)[0][1] == 1
    assert {m.status for m in messages} == {"sent"} and {m.kind for m in messages} == {"reminder"}
    assert len(messages) == len(mailed_debtors)

    # The server received each message exactly once: by Message-ID and by recipient.
    received = smtp_server.handler.take()
    ids = Counter(r.message["Message-ID"] for r in received)
    rcpts = Counter(tuple(r.rcpt_tos) for r in received)
    assert all(c == 1 for c in ids.values()), [i for i, c in ids.items() if c > 1]
    assert all(c == 1 for c in rcpts.values()), [r for r, c in rcpts.items() if c > 1]
    assert set(ids) == {m.message_id_header for m in messages}
    assert {r[0] for r in rcpts} == {f"client{int(ref[1:])}@example.com" for ref in mailed_debtors}
    for r in received:  # each e-mail lists exactly its debtor's invoices due a step that day
        n = int(r.rcpt_tos[0].removeprefix("client").removesuffix("@example.com"))
        listed = {number for (ref, number) in expected if ref == f"C{n:02d}" and (ref, number) not in formal}
        body = r.text()
        assert all(number in body for number in listed)
        assert not any(f"F{n:02d}-{k}" in body for k in range(5) if f"F{n:02d}-{k}" not in listed)

    # The four JSON lines add up: each reminder planned by one process, each e-mail sent by one.
    assert all(o["date"] == D.isoformat() and o["failed"] == 0 for o in outputs)
    assert sum(o["sent"] for o in outputs) == len(received)
    assert sum(o["planned"] for o in outputs) == len(expected)
    assert sum(o["awaiting_approval"] for o in outputs) == len(formal)

    # A fifth run for the same date plans and sends nothing new.
    fifth = json_line(flask("dunning", "run", "--date", D.isoformat(), env=env))
    assert fifth == {"date": D.isoformat(), "planned": 0, "sent": 0, "awaiting_approval": 0, "failed": 0, "held": 0}
    assert smtp_server.handler.take() == []
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == len(expected)


def test_four_concurrent_senders_deliver_each_message_once(app, creditor, database_url):
    """`dunning send` from four processes over one composed outbox, on both engines: on SQLite,
    which has no row locks, two senders can take the same message, and only the one that marks
    it sent may finish it."""
    creditor_row = db.session.get(Creditor, creditor.id)
    for n in range(16):
        ledger.upsert_debtor(creditor_row, f"S{n}", {"name": f"Client {n}", "email": f"s{n}@example.com",
                                                     "language": "fr"})
        ledger.upsert_invoice(creditor_row, f"S{n}", {"debtor_ref": f"S{n}", "issue_date": "2026-05-01",
                                                      "due_date": (D - timedelta(days=1)).isoformat(),
                                                      "amount": "80.00", "currency": "EUR"})
    dunning_day.plan_creditor(creditor_row, D, dunning_day.DayResult(date=D.isoformat()))
    outbox_ids = set(db.session.scalars(select(OutboxMessage.message_id_header)))
    assert len(outbox_ids) == 16
    db.session.remove()

    server = SlowSmtpServer(delay=0.02).start()  # slow enough for the senders to overlap
    try:
        env = app_env(database_url, server.url)
        procs = [flask("dunning", "send", env=env) for _ in range(PROCESSES)]
        outputs = [json_line(p) for p in procs]
        received = Counter(r.message["Message-ID"] for r in server.handler.messages)
    finally:
        server.stop()
    assert [mid for mid, n in received.items() if n > 1] == []
    assert set(received) == outbox_ids
    assert sum(o["sent"] for o in outputs) == 16 and all(o["failed"] == 0 for o in outputs)
    db.session.commit()
    assert set(db.session.scalars(select(OutboxMessage.status))) == {"sent"}
