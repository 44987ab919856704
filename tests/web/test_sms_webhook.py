"""POST /webhooks/twilio: status callbacks and replies, signed by the fake Twilio server exactly as
Twilio signs them and checked with the SDK's RequestValidator (CONTRACT §9)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from fakes.twilio_server import twilio_signature
from portal.extensions import db
from portal.models import Debtor, Event, OutboxMessage, WebhookEvent, utcnow
from support import count, look

HOOK = "http://portal.test/webhooks/twilio"
MOBILE = "+33612345678"


@pytest.fixture
def app_config(fake_twilio):
    return {"TWILIO_ACCOUNT_SID": fake_twilio.account_sid, "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
            "TWILIO_FROM": fake_twilio.sender, "TWILIO_API_BASE": fake_twilio.url}


@pytest.fixture
def twilio(fake_twilio, client):
    """The fake, its callbacks posted into the app (the test client) at our public URL."""
    fake_twilio.inbound_url = HOOK
    fake_twilio.webhook_sink = lambda body, headers: client.post(
        "/webhooks/twilio", data=body, headers=headers).status_code
    return fake_twilio


def _debtor(api, ref, phone, name=None):
    r = api.put(f"/debtors/{ref}", json={"name": name or f"Client {ref}", "email": f"{ref.lower()}@example.com",
                                        "language": "fr", "phone": phone})
    assert r.status_code in (200, 201), r.json
    return db.session.scalar(select(Debtor).where(Debtor.ref == ref, Debtor.creditor_id == _creditor_of(api)))


def _creditor_of(api):
    return api.creditor_id


def _sms(app, debtor, to, *, sid=None, sent_ago=timedelta(hours=1)):
    """An SMS of the outbox as the sending side leaves it: sent, with Twilio's id."""
    message = OutboxMessage(creditor_id=debtor.creditor_id, debtor_id=debtor.id, kind="reminder", channel="sms",
                            to_addr=to, subject="", text_body="Rappel", html_body="",
                            message_id_header=f"<{uuid.uuid4().hex}@relance.test>", status="sent",
                            sent_at=utcnow() - sent_ago, provider_message_id=sid, delivery_status="queued")
    db.session.add(message)
    db.session.commit()
    return message


def _sent_through_fake(twilio, debtor, app, to=MOBILE, **kwargs):
    """A message really created at the fake (so it can call back), recorded in our outbox."""
    from portal import gateways
    sent = gateways.sms().send_sms(to, "Rappel", status_callback=HOOK)
    return _sms(app, debtor, to, sid=sent.sid, **kwargs)


def _events(type_, debtor_id=None):
    db.session.expire_all()
    q = select(Event).where(Event.type == type_).order_by(Event.id)
    if debtor_id is not None:
        q = q.where(Event.debtor_id == debtor_id)
    return list(db.session.scalars(q))


@pytest.fixture
def api_for(client):
    from support import Api

    def make(info):
        a = Api(client, info)
        a.creditor_id = info.id
        return a
    return make


def test_a_forged_or_unsigned_callback_is_refused_and_nothing_recorded(app, twilio, api_for, creditor, client):
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    params = {"MessageSid": "SM" + "0" * 32, "From": MOBILE, "To": twilio.sender, "Body": "STOP"}
    forged = twilio.deliver(HOOK, params, signature=twilio_signature("not-the-token", HOOK, params))
    assert forged.status == 403
    assert client.post("/webhooks/twilio", data=params).status_code == 403  # no signature at all
    # Signed for another URL (a callback replayed at us from elsewhere), or the body changed after.
    elsewhere = twilio_signature(twilio.auth_token, "http://elsewhere.test/webhooks/twilio", params)
    assert client.post("/webhooks/twilio", data=params, headers={"X-Twilio-Signature": elsewhere}).status_code == 403
    signed = twilio_signature(twilio.auth_token, HOOK, params)
    tampered = {**params, "From": "+33698765432"}
    assert client.post("/webhooks/twilio", data=tampered, headers={"X-Twilio-Signature": signed}).status_code == 403
    assert count(WebhookEvent) == 0 and not _events("sms.opted_out")
    db.session.refresh(debtor)
    assert debtor.sms_opt_out is False
    # The control: the same callback, truly signed, is taken.
    assert client.post("/webhooks/twilio", data=params, headers={"X-Twilio-Signature": signed}).status_code == 200
    db.session.refresh(debtor)
    assert debtor.sms_opt_out is True


def test_not_configured_is_404(make_app):
    r = make_app().test_client().post("/webhooks/twilio", data={"MessageSid": "SMx", "Body": "STOP"})
    assert r.status_code == 404


def test_a_status_callback_is_applied_once_and_never_goes_back(app, twilio, api_for, creditor):
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    message = _sent_through_fake(twilio, debtor, app)
    sent = twilio.advance(message.provider_message_id, "sent")
    assert sent.status == 200 and sent.headers  # the app answered
    delivered = twilio.advance(message.provider_message_id, "delivered")
    assert delivered.status == 200
    # Twilio may deliver a callback again, and late: neither moves anything.
    again = twilio.deliver(HOOK, delivered.params)
    late = twilio.deliver(HOOK, sent.params)
    assert again.status == late.status == 200
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).delivery_status == "delivered"
    rows = look(lambda: [(w.event_id, w.outcome) for w in db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))])
    sid = message.provider_message_id
    assert rows == [(f"{sid}:sent", "applied"), (f"{sid}:delivered", "applied")]
    assert not _events("sms.undelivered")


def test_the_answer_is_empty_twiml(app, twilio, api_for, creditor, client):
    _debtor(api_for(creditor), "D1", MOBILE)
    params = {"MessageSid": "SM" + "2" * 32, "From": MOBILE, "To": twilio.sender, "Body": "Bonjour"}
    r = client.post("/webhooks/twilio", data=params,
                    headers={"X-Twilio-Signature": twilio_signature(twilio.auth_token, HOOK, params)})
    assert r.status_code == 200 and r.mimetype == "text/xml"
    assert r.get_data(as_text=True).endswith("<Response/>")


def test_undelivered_puts_an_event_with_the_error_code_on_the_debtor(app, twilio, api_for, creditor, client):
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    message = _sent_through_fake(twilio, debtor, app)
    twilio.advance(message.provider_message_id, "sent")
    twilio.advance(message.provider_message_id, "undelivered", error_code=30003)
    twilio.advance(message.provider_message_id, "undelivered", error_code=30003)  # redelivered
    found = _events("sms.undelivered", debtor.id)
    assert len(found) == 1 and found[0].data["error_code"] == 30003 and found[0].data["message_id"] == message.id
    assert db.session.get(OutboxMessage, message.id).delivery_status == "undelivered"
    from support import back_office_login
    page = back_office_login(client, creditor).get(f"/app/debtors/{debtor.ref}").get_data(as_text=True)
    assert "30003" in page


@pytest.mark.parametrize("body", ["STOP", "  stop\n", "Arrêt", "ARRET", "arret ", "StopAll", "unsubscribe"])
def test_stop_opts_the_number_out_for_every_creditor(app, twilio, api_for, new_creditor, body):
    a, b = new_creditor("Plomberie A"), new_creditor("Garage B")
    mine = _debtor(api_for(a), "D1", "06 12 34 56 78")
    theirs = _debtor(api_for(b), "X9", MOBILE)
    other = _debtor(api_for(b), "X10", "+33698765432")
    r = twilio.reply(MOBILE, body)
    assert r.status == 200
    twilio.deliver(HOOK, r.params)  # Twilio's retry: nothing more
    db.session.expire_all()
    assert db.session.get(Debtor, mine.id).sms_opt_out and db.session.get(Debtor, theirs.id).sms_opt_out
    assert not db.session.get(Debtor, other.id).sms_opt_out
    opted = _events("sms.opted_out")
    assert sorted((e.creditor_id, e.debtor_id) for e in opted) == sorted([(a.id, mine.id), (b.id, theirs.id)])
    assert {e.data["via"] for e in opted} == {"sms"}


def test_a_sentence_with_stop_in_it_is_a_reply_not_an_opt_out(app, twilio, api_for, creditor):
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    _sms(app, debtor, MOBILE)
    twilio.reply(MOBILE, "Stop, j'ai déjà payé")
    db.session.expire_all()
    assert not db.session.get(Debtor, debtor.id).sms_opt_out
    assert [e.data["text"] for e in _events("sms.replied", debtor.id)] == ["Stop, j'ai déjà payé"]


def test_start_opts_back_in(app, twilio, api_for, creditor):
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    twilio.reply(MOBILE, "ARRET")
    twilio.reply(MOBILE, "start")
    db.session.expire_all()
    assert db.session.get(Debtor, debtor.id).sms_opt_out is False
    assert [e.type for e in _events("sms.opted_in", debtor.id)] == ["sms.opted_in"]
    twilio.reply(MOBILE, "UNSTOP")  # already in: nothing to record
    assert len(_events("sms.opted_in")) == 1


def test_a_reply_reaches_whoever_texted_that_number_last(app, twilio, api_for, new_creditor, client):
    a, b = new_creditor("Plomberie A"), new_creditor("Garage B")
    mine = _debtor(api_for(a), "D1", MOBILE)
    theirs = _debtor(api_for(b), "X9", "06 12 34 56 78")
    _sms(app, mine, MOBILE, sent_ago=timedelta(days=3))
    _sms(app, theirs, MOBILE, sent_ago=timedelta(hours=2))
    unsent = _sms(app, mine, MOBILE, sent_ago=timedelta(0))
    unsent.sent_at, unsent.status = None, "pending"  # not sent yet: it routes nothing
    db.session.commit()
    twilio.reply(MOBILE, "Je paie vendredi, promis")
    replied = _events("sms.replied")
    assert [(e.creditor_id, e.debtor_id, e.data["text"]) for e in replied] == [
        (b.id, theirs.id, "Je paie vendredi, promis")]
    # It shows in that creditor's feed and on that debtor's page, not in the other creditor's.
    from support import back_office_login
    bo = back_office_login(client, b)
    assert "Je paie vendredi, promis" in bo.get("/app/activity").get_data(as_text=True)
    assert "Je paie vendredi, promis" in bo.get(f"/app/debtors/{theirs.ref}").get_data(as_text=True)
    other = back_office_login(app.test_client(), a)
    assert "Je paie vendredi" not in other.get("/app/activity").get_data(as_text=True)


def test_a_reply_from_an_unknown_number_is_recorded_and_goes_nowhere(app, twilio, api_for, creditor):
    _debtor(api_for(creditor), "D1", MOBILE)
    r = twilio.reply("+33698765432", "Qui est-ce ?")
    assert r.status == 200
    assert not _events("sms.replied")
    assert look(lambda: [w.outcome for w in db.session.scalars(select(WebhookEvent))]) == ["ignored"]


def test_a_status_of_a_message_not_recorded_yet_is_not_claimed(app, twilio, api_for, creditor):
    """An early callback (the outbox has not committed Twilio's id yet) must not block the same
    status later: nothing is claimed, and once the id is recorded the redelivery applies."""
    debtor = _debtor(api_for(creditor), "D1", MOBILE)
    from portal import gateways
    sent = gateways.sms().send_sms(MOBILE, "Rappel", status_callback=HOOK)
    early = twilio.advance(sent.sid, "delivered")
    assert early.status == 200 and count(WebhookEvent) == 0
    message = _sms(app, debtor, MOBILE, sid=sent.sid)
    assert twilio.deliver(HOOK, early.params).status == 200
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).delivery_status == "delivered"
