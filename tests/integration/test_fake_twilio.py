"""The fake Twilio server, driven by the real `twilio` SDK over HTTP: the shapes it answers, its
errors, paging and filters, and callbacks that the SDK's own RequestValidator accepts."""
from __future__ import annotations

import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from fakes.provider_http import ProviderServer, Reply
from fakes.twilio_server import segments, twilio_signature

MOBILE = "+33612345678"


@pytest.fixture
def client(fake_twilio):
    c = Client(fake_twilio.account_sid, fake_twilio.auth_token)
    c.api.base_url = fake_twilio.url
    return c


class Receiver(ProviderServer):
    """Where callbacks go: records each POST as the app will see it (its URL and form)."""

    def __init__(self):
        super().__init__()
        self.received = []
        self.route("POST", "/webhooks/twilio", self._post)

    def _post(self, req):
        query = urllib.parse.urlencode({k: v[-1] for k, v in req.query.items()})
        url = f"http://{req.headers['host']}{req.path}" + (f"?{query}" if query else "")
        self.received.append((url, {k: v[-1] for k, v in req.form().items()}, req.headers))
        return Reply(200, b"<Response/>", {"Content-Type": "text/xml"})


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def test_a_message_is_created_in_twilios_shape(fake_twilio, client):
    m = client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="Bonjour", status_callback="https://x/cb")
    assert m.sid.startswith("SM") and len(m.sid) == 34 and m.status == "queued" and m.direction == "outbound-api"
    assert m.account_sid == fake_twilio.account_sid and m.num_segments == "1" and m.date_sent is None
    assert isinstance(m.date_created, datetime) and m.date_created.tzinfo is not None
    assert fake_twilio.created[-1]["StatusCallback"] == "https://x/cb"
    assert client.messages(m.sid).fetch().body == "Bonjour"


@pytest.mark.parametrize("to,sender,body,status,code", [
    ("+3361", None, "x", 400, 21211),             # invalid number
    ("+33145678901", None, "x", 400, 21614),      # a landline
    (MOBILE, "+33757999999", "x", 400, 21606),    # not our number
    (MOBILE, None, "", 400, 21602),               # no body
])
def test_refusals_carry_twilios_error_code(fake_twilio, client, to, sender, body, status, code):
    with pytest.raises(TwilioRestException) as e:
        client.messages.create(to=to, from_=sender or fake_twilio.sender, body=body)
    assert (e.value.status, e.value.code) == (status, code)
    assert not fake_twilio.messages


def test_the_error_body_is_twilios(fake_twilio):
    r = requests.post(f"{fake_twilio.url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json",
                      data={"To": "+3361", "From": fake_twilio.sender, "Body": "x"},
                      auth=(fake_twilio.account_sid, fake_twilio.auth_token))
    assert r.json() == {"code": 21211, "message": "Invalid 'To' Phone Number: +3361",
                        "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}


def test_basic_auth_is_checked(fake_twilio):
    bad = Client(fake_twilio.account_sid, "wrong")
    bad.api.base_url = fake_twilio.url
    with pytest.raises(TwilioRestException) as e:
        bad.messages.create(to=MOBILE, from_=fake_twilio.sender, body="x")
    assert (e.value.status, e.value.code) == (401, 20003) and not fake_twilio.messages


def test_a_recipient_who_texted_stop_is_refused_with_21610(fake_twilio, client, receiver):
    fake_twilio.inbound_url = f"{receiver.url}/webhooks/twilio"
    fake_twilio.reply(MOBILE, "Stop")
    with pytest.raises(TwilioRestException) as e:
        client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="x")
    assert e.value.code == 21610
    assert receiver.received[-1][1]["OptOutType"] == "STOP"
    fake_twilio.reply(MOBILE, "START")
    assert client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="x").status == "queued"


def test_the_list_is_filtered_newest_first_and_paged(fake_twilio, client):
    start = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    for i in range(7):
        fake_twilio.clock = lambda i=i: start + timedelta(minutes=i)
        client.messages.create(to=MOBILE, from_=fake_twilio.sender, body=f"n{i}")
    client.messages.create(to="+33756123456", from_=fake_twilio.sender, body="other")
    page = client.messages.page(to=MOBILE, from_=fake_twilio.sender, page_size=3)
    assert [m.body for m in page] == ["n6", "n5", "n4"] and page.next_page_url.startswith(fake_twilio.url)
    assert [m.body for m in client.messages.stream(to=MOBILE, page_size=3)] == [f"n{i}" for i in range(6, -1, -1)]
    raw = requests.get(f"{fake_twilio.url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json",
                       params={"To": MOBILE, "PageSize": 3}, auth=(fake_twilio.account_sid, fake_twilio.auth_token)).json()
    assert {"messages", "page", "page_size", "next_page_uri", "first_page_uri", "uri", "start", "end"} <= set(raw)
    assert "PageToken=" in raw["next_page_uri"] and raw["next_page_uri"].startswith("/2010-04-01/Accounts/")


def test_date_sent_filters_only_see_sent_messages(fake_twilio, client):
    fake_twilio.clock = lambda: datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    sent = client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="sent")
    client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="still queued")
    fake_twilio.advance(sent.sid, "sent")
    day = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert [m.body for m in client.messages.list(to=MOBILE, date_sent_after=day)] == ["sent"]
    assert [m.body for m in client.messages.list(to=MOBILE, date_sent_after=day + timedelta(hours=10))] == []
    assert [m.body for m in client.messages.list(date_sent="2026-12-07")] == ["sent"]


def test_a_dropped_answer_still_leaves_the_message(fake_twilio, client):
    fake_twilio.fail_next()
    with pytest.raises(requests.ConnectionError):
        client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="maybe")
    fake_twilio.fail_next(503)
    with pytest.raises(TwilioRestException) as e:
        client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="maybe again")
    assert e.value.status == 503
    assert [m.body for m in client.messages.list(to=MOBILE)] == ["maybe again", "maybe"]
    assert client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="fine").status == "queued"


def test_status_callbacks_and_replies_are_signed_as_twilio_signs_them(fake_twilio, client, receiver):
    callback = f"{receiver.url}/webhooks/twilio?outbox=42"
    m = client.messages.create(to=MOBILE, from_=fake_twilio.sender, body="x", status_callback=callback)
    fake_twilio.advance(m.sid, "sent")
    fake_twilio.advance(m.sid, "undelivered", error_code=30003)
    fake_twilio.inbound_url = f"{receiver.url}/webhooks/twilio"
    fake_twilio.reply(MOBILE, "Je paie demain, merci")
    validator = RequestValidator(fake_twilio.auth_token)
    assert len(receiver.received) == 3
    for url, params, headers in receiver.received:
        assert validator.validate(url, params, headers["x-twilio-signature"]), url
        assert headers["content-type"] == "application/x-www-form-urlencoded"
    (url1, sent, _), (_, undelivered, _), (_, inbound, _) = receiver.received
    assert url1 == callback and sent["MessageStatus"] == "sent" and sent["MessageSid"] == m.sid
    assert undelivered["MessageStatus"] == "undelivered" and undelivered["ErrorCode"] == "30003"
    assert inbound["Body"] == "Je paie demain, merci" and inbound["From"] == MOBILE and inbound["To"] == fake_twilio.sender
    assert client.messages(m.sid).fetch().date_sent is not None
    # tampered: another status, another URL, another key
    url, params, headers = receiver.received[0]
    assert not validator.validate(url, {**params, "MessageStatus": "delivered"}, headers["x-twilio-signature"])
    assert not validator.validate(url.replace("outbox=42", "outbox=43"), params, headers["x-twilio-signature"])
    assert not RequestValidator("another-token").validate(url, params, headers["x-twilio-signature"])
    assert twilio_signature(fake_twilio.auth_token, url, params) == headers["x-twilio-signature"]


def test_num_segments_as_twilio_reports_them():
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("€" * 80) == 1
    assert segments("ç" * 70) == 1 and segments("ç" * 71) == 2
