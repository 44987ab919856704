"""The outbox sends the bytes built when the message was composed (OutboxMessage.raw), builds
them at send time for a message without them, and marks a message sent with the same reminders
and events on both engines (one statement on PostgreSQL, four a message on SQLite); the handover
before the final dot stays guarded against a message another sender took first, and a handover
left by a killed sender is recorded sent by the next run. Real SMTP server (aiosmtpd)."""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from dunning_jobs import day as dunning_day
from dunning_jobs import outbox, outbox_records
from portal.extensions import db
from portal.models import Creditor, Debtor, Event, OutboxHandover, OutboxMessage, Reminder, utcnow
from portal.services import ledger

D = date(2026, 5, 4)


@pytest.fixture
def app_config(smtp_server):
    return {"SMTP_URL": smtp_server.url, "MAIL_FROM": "Atelier Test <relances@atelier.test>"}


def compose(creditor_id: int, debtors: int = 2) -> list[OutboxMessage]:
    """Debtors with two overdue invoices each, planned and composed for D, not sent."""
    creditor = db.session.get(Creditor, creditor_id)
    for n in range(debtors):
        ledger.upsert_debtor(creditor, f"B{n}", {"name": f"Client {n}", "email": f"b{n}@example.com",
                                                  "language": "fr" if n % 2 else "en"})
        for k in range(2):
            ledger.upsert_invoice(creditor, f"B{n}-{k}", {"debtor_ref": f"B{n}", "issue_date": "2026-03-01",
                                                         "due_date": (D - timedelta(days=1 + 7 * k)).isoformat(),
                                                         "amount": "99.90", "currency": "EUR"})
    result = dunning_day.DayResult(date=D.isoformat())
    dunning_day.plan_creditor(creditor, D, result)
    db.session.commit()
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")
                              .order_by(OutboxMessage.id)).all()


def test_composed_messages_go_out_byte_for_byte(app, creditor, smtp_server):
    messages = compose(creditor.id)
    assert len(messages) == 2 and all(m.raw for m in messages)
    stored = {m.message_id_header: m.raw for m in messages}
    assert outbox.send_pending().sent == 2
    received = smtp_server.handler.take()
    assert {r.message["Message-ID"]: r.raw for r in received} == stored
    for r in received:
        assert r.message["Reply-To"] == creditor.email
        assert "B" in r.text() and "<html" in r.html()


def test_message_without_bytes_is_built_at_send_time(app, creditor, smtp_server):
    """Messages composed before the bytes were stored, or written by services that do not store
    them, are built from their columns when sent."""
    debtor = db.session.scalar(select(Debtor).where(Debtor.id == compose(creditor.id, debtors=1)[0].debtor_id))
    db.session.execute(OutboxMessage.__table__.update().values(status="sent"))  # only the one below
    alert = OutboxMessage(creditor_id=creditor.id, debtor_id=debtor.id, kind="creditor_alert", channel="email",
                          to_addr="owner@example.com", subject="Un litige a été ouvert — facture B0-1",
                          text_body="Bonjour,\n.\nUne ligne qui commence par un point.\n",
                          html_body="<p>Bonjour</p>", message_id_header=f"<{uuid.uuid4().hex}@atelier.test>",
                          created_at=utcnow(), next_attempt_at=utcnow())
    db.session.add(alert)
    db.session.commit()
    assert alert.raw is None
    assert outbox.send_pending().sent == 1
    [r] = smtp_server.handler.take()
    assert r.rcpt_tos == ["owner@example.com"]
    assert r.message["Message-ID"] == alert.message_id_header
    assert r.subject == alert.subject
    assert r.text().replace("\r\n", "\n") == alert.text_body  # the lone "." line survived dot-stuffing
    db.session.expire_all()
    assert (alert.status, alert.attempts, alert.last_error) == ("sent", 1, None)
    [event] = db.session.scalars(select(Event).where(Event.type == "message.sent")).all()
    assert (event.debtor_id, event.invoice_id, event.actor) == (debtor.id, None, "system")
    assert event.data == {"message_id": alert.id, "kind": "creditor_alert"}


def test_sent_marks_reminders_and_writes_one_event_each(app, creditor, smtp_server):
    messages = compose(creditor.id)
    assert outbox.send_pending().sent == 2
    db.session.expire_all()
    for m in messages:
        assert (m.status, m.attempts) == ("sent", 1) and m.sent_at is not None
        reminders = db.session.scalars(select(Reminder).where(Reminder.message_id == m.id)).all()
        assert len(reminders) == 2 and {r.status for r in reminders} == {"sent"}
        events = db.session.scalars(select(Event).where(Event.type == "reminder.sent",
                                                        Event.debtor_id == m.debtor_id)).all()
        assert sorted((e.invoice_id, e.data["message_id"], e.data["step"], e.data["channel"]) for e in events) == \
            sorted((r.invoice_id, m.id, r.step_code, "email") for r in reminders)
        assert all(e.creditor_id == creditor.id and e.actor == "system" for e in events)
    assert outbox.send_pending().sent == 0


def test_handover_is_guarded_against_a_message_already_sent(app, creditor, engine_name):
    """What a sender that lost the race (SQLite: no row locks) sees: nothing written."""
    [message] = compose(creditor.id, debtors=1)
    message.status = "sent"  # another sender got there first
    db.session.commit()
    events_before = len(db.session.scalars(select(Event.id)).all())
    with db.engine.connect() as c:
        with pytest.raises(outbox_records.Taken):
            outbox_records.HandOver(c)(message.id)
    assert db.session.scalars(select(OutboxHandover)).all() == []
    assert len(db.session.scalars(select(Event.id)).all()) == events_before
    assert {r.status for r in db.session.scalars(select(Reminder).where(Reminder.message_id == message.id))} == \
        {"planned"}


def test_handover_is_guarded_against_a_second_handover(app, creditor, engine_name):
    """Two senders on one message (SQLite): the second handover finds the first and is refused."""
    [message] = compose(creditor.id, debtors=1)
    with db.engine.connect() as c:
        outbox_records.HandOver(c)(message.id)
        with pytest.raises(outbox_records.Taken):
            outbox_records.HandOver(c)(message.id)
    assert [h.message_id for h in db.session.scalars(select(OutboxHandover))] == [message.id]


def test_prepared_handover_of_postgresql_refuses_a_second_one(app, creditor, engine_name):
    """PostgreSQL's sender hands over on an autocommit connection through its prepared insert,
    guarded by the primary key: a second handover (a killed sender's leftover) is refused, even
    from a second run on the same pooled connection (its statement is prepared there already)."""
    if engine_name != "postgresql":
        pytest.skip("the prepared handover is PostgreSQL's")
    [message] = compose(creditor.id, debtors=1)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        outbox_records.HandOver(c)(message.id)
        with pytest.raises(outbox_records.Taken):
            outbox_records.HandOver(c)(message.id)
    [handover] = db.session.scalars(select(OutboxHandover)).all()
    assert handover.message_id == message.id and handover.handed_at is not None


def test_a_handover_left_by_a_killed_sender_is_recorded_sent_by_the_next_run(app, creditor, engine_name,
                                                                              smtp_server):
    """Handed over (its final dot may have gone out), then the sender died before recording it:
    the next run records it sent, once, without sending it again."""
    [message] = compose(creditor.id, debtors=1)
    with db.engine.connect() as c:
        outbox_records.HandOver(c)(message.id)
    assert outbox.send_pending().sent == 0
    assert smtp_server.handler.messages == []
    db.session.expire_all()
    assert (message.status, message.attempts) == ("sent", 1)
    assert message.sent_at is not None
    assert db.session.scalars(select(OutboxHandover)).all() == []
    assert {r.status for r in db.session.scalars(select(Reminder).where(Reminder.message_id == message.id))} == \
        {"sent"}
    sent = db.session.scalars(select(Event).where(Event.type == "reminder.sent",
                                                  Event.data["message_id"].as_integer() == message.id)).all()
    assert len(sent) == len(db.session.scalars(select(Reminder.id).where(Reminder.message_id == message.id)).all())
    assert outbox.send_pending().sent == 0


@pytest.mark.parametrize("password, sent", [("wrong", 0), ("s3cret", 2)])
def test_a_refused_login_leaves_the_outbox_pending(app, creditor, password, sent):
    """A login the server refuses (535) is the server unavailable to us, not the messages refused:
    nothing is marked failed and nothing raises; the next run with the right password sends them."""
    from fakes.smtp_server import SmtpServer
    server = SmtpServer(login=("relance", "s3cret")).start()
    try:
        app.config["SMTP_URL"] = f"smtp://relance:{password}@127.0.0.1:{server.port}"
        messages = compose(creditor.id)
        result = outbox.send_pending()
        assert (result.sent, result.failed) == (sent, 0)
        db.session.expire_all()
        statuses = {db.session.get(OutboxMessage, m.id).status for m in messages}
        assert statuses == ({"pending"} if sent == 0 else {"sent"})
        assert len(server.handler.take()) == sent
    finally:
        server.stop()
