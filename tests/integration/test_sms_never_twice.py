"""An SMS is never sent twice (CONTRACT §9), counted on the fake Twilio server's received
messages, both engines: an answer lost (hang-up, 5xx) is looked up in Twilio's list before any
retry; a sender killed after its handover, before or after its request, leaves a handover the next
run looks up (found: recorded sent with that SID; not found: sent once); four `flask dunning send`
processes at once, some of their requests answered by a hang-up; a `flask dunning send` process
SIGKILLed while Twilio holds its answer."""
from __future__ import annotations

import signal
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from dunning_jobs.outbox_records import HandOver
from dunning_jobs.outbox_sms import IN_FLIGHT
from fakes.cli_process import app_env, flask, json_line
from fakes.twilio_server import FakeTwilio
from portal import gateways
from portal.extensions import db
from portal.gateways.twilio import TwilioGateway
from portal.models import OutboxHandover, OutboxMessage, utcnow
from portal.models.base import replaying

from test_dunning_crash import wait_for_dead_sessions
from test_sms_steps import app_config, messages, paris, run_day, seed, send_at, twilio_config  # noqa: F401

AT = paris(2026, 5, 11, 10, 0)  # a Monday morning: SMS may go at once
LATER = AT + IN_FLIGHT + timedelta(minutes=5)  # past the backoff and any request in flight


def composed(creditor_id: int, ref: str = "U1", phone: str = "06 12 34 56 78") -> OutboxMessage:
    debtor_id = seed(creditor_id, ref, AT.date(), phone)
    run_day(creditor_id, AT.date(), AT)
    [message] = messages(debtor_id)
    assert message.channel == "sms" and message.status == "pending"
    return message


def handovers() -> list[int]:
    db.session.commit()
    return db.session.scalars(select(OutboxHandover.message_id)).all()


@pytest.mark.parametrize("fault", [None, 500], ids=["hang-up", "5xx"])
def test_lost_answer_is_looked_up_not_sent_again(app, creditor, fake_twilio, fault):
    message = composed(creditor.id)
    fake_twilio.fail_next(fault)  # Twilio creates the message, then the answer is lost
    sent = send_at(AT)
    assert (sent.sent, sent.deferred) == (0, 1) and len(fake_twilio.created) == 1
    assert handovers() == [message.id]
    [waiting] = messages(message.debtor_id)
    assert waiting.status == "pending" and waiting.attempts == 1 and waiting.next_attempt_at > AT
    assert send_at(AT + timedelta(seconds=30)).sent == 0  # not due yet: nothing asked of Twilio

    send_at(LATER)
    [done] = messages(message.debtor_id)
    assert (done.status, done.provider_message_id) == ("sent", fake_twilio.created[0]["sid"])
    assert done.sent_at == AT  # when it was handed over
    assert len(fake_twilio.created) == 1 and handovers() == []


def hand_over(message_id: int) -> None:
    """What a sender does just before its request, committed: then it is killed."""
    connection = db.engine.connect()
    try:
        with replaying(AT):
            HandOver(connection)(message_id)
        connection.commit()
    finally:
        connection.close()


def test_sender_killed_before_its_request_sends_once_later(app, creditor, fake_twilio):
    message = composed(creditor.id)
    hand_over(message.id)
    # Right after, the handover may be a live sender's request: left alone, nothing sent.
    assert send_at(AT + timedelta(seconds=10)).sent == 0 and fake_twilio.created == []
    assert send_at(LATER).sent == 1  # not in Twilio's list: sent, once
    [done] = messages(message.debtor_id)
    assert (done.status, done.provider_message_id) == ("sent", fake_twilio.created[0]["sid"])
    assert len(fake_twilio.created) == 1 and handovers() == []


def test_sender_killed_after_its_request_is_recorded_with_that_sid(app, creditor, fake_twilio):
    message = composed(creditor.id)
    hand_over(message.id)
    twilio_sid = gateways.sms().send_sms(message.to_addr, message.text_body).sid  # then killed
    assert send_at(AT + timedelta(seconds=10)).sent == 0
    send_at(LATER)
    [done] = messages(message.debtor_id)
    assert (done.status, done.provider_message_id) == ("sent", twilio_sid)
    assert len(fake_twilio.created) == 1 and handovers() == []


def test_twilio_list_unavailable_leaves_the_handover(app, creditor, fake_twilio):
    message = composed(creditor.id)
    hand_over(message.id)
    # Twilio out of reach (a closed port): neither its list nor a new request can be had.
    app.extensions["relance_gateways"]["twilio"] = TwilioGateway(
        fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.sender, "http://127.0.0.1:9", timeout=2)
    send_at(LATER)
    assert fake_twilio.created == []
    assert handovers() == [message.id] and messages(message.debtor_id)[0].status == "pending"


def test_four_concurrent_senders_text_each_debtor_once(app, creditor, fake_twilio, database_url):
    numbers = [f"+336123456{n:02d}" for n in range(12)]
    for n, number in enumerate(numbers):
        seed(creditor.id, f"C{n}", AT.date(), number)
    run_day(creditor.id, AT.date(), AT)
    ids = set(db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.channel == "sms")))
    assert len(ids) == 12
    db.session.remove()
    fake_twilio.fail_next(None, times=2)  # two answers lost on the way

    env = app_env(database_url, **twilio_config(fake_twilio))
    outputs = [json_line(p) for p in [flask("dunning", "send", env=env) for _ in range(4)]]
    assert sum(o["sent"] for o in outputs) == 10 and all(o["failed"] == 0 for o in outputs)
    assert len(handovers()) == 2

    # The next run, once due, looks the two up and records them: nothing sent again.
    send_at(utcnow() + IN_FLIGHT + timedelta(minutes=5))
    received = Counter(c["To"] for c in fake_twilio.created)
    assert received == Counter({number: 1 for number in numbers})
    rows = db.session.execute(select(OutboxMessage.status, OutboxMessage.provider_message_id)
                              .where(OutboxMessage.id.in_(ids))).all()
    assert {status for status, _ in rows} == {"sent"}
    assert {sid for _, sid in rows} == {c["sid"] for c in fake_twilio.created}
    assert handovers() == []


class HoldingTwilio(FakeTwilio):
    """Holds the answer to the `hold_at`-th message POST (the message already created), until
    the test lets it go: where a sender is killed with its request made and no answer yet."""

    def __init__(self, hold_at: int):
        super().__init__()
        self.hold_at, self.held, self.release = hold_at, threading.Event(), threading.Event()

    def _create(self, req):
        reply = super()._create(req)
        if len(self.created) == self.hold_at and not self.held.is_set():
            self.held.set()
            self.release.wait(30)
        return reply


def test_sender_killed_waiting_for_twilio_sends_nothing_twice(app, creditor, database_url, engine_name):
    twilio = HoldingTwilio(hold_at=3).start()
    try:
        app.config.update(twilio_config(twilio))
        app.extensions.get("relance_gateways", {}).pop("twilio", None)
        numbers = [f"+336123457{n:02d}" for n in range(6)]
        for n, number in enumerate(numbers):
            seed(creditor.id, f"K{n}", AT.date(), number)
        run_day(creditor.id, AT.date(), AT)
        db.session.remove()

        sender = flask("dunning", "send", env=app_env(database_url, **twilio_config(twilio)))
        try:
            assert twilio.held.wait(45), sender.communicate(timeout=5)
            sender.send_signal(signal.SIGKILL)  # its third SMS created at Twilio, no answer yet
            sender.wait(10)
        finally:
            twilio.release.set()
        wait_for_dead_sessions(engine_name)
        # Killed mid-batch: its three SMS were created at Twilio and handed over here, none
        # recorded yet (a batch is recorded when it ends).
        assert len(twilio.created) == 3 and len(handovers()) == 3

        send_at(utcnow() + IN_FLIGHT + timedelta(minutes=5))  # looks the three up, sends the rest
        assert Counter(c["To"] for c in twilio.created) == Counter({number: 1 for number in numbers})
        rows = db.session.execute(select(OutboxMessage.status, OutboxMessage.provider_message_id)).all()
        assert {status for status, _ in rows} == {"sent"}
        assert {sid for _, sid in rows} == {c["sid"] for c in twilio.created}
        assert handovers() == []
    finally:
        twilio.stop()
