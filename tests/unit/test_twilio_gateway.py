"""SMS through Twilio (gateways/twilio.py): the real SDK against the fake Twilio server over HTTP.
Refusals and uncertain outcomes apart, an uncertain hand-over found again in the message list,
signatures checked with the SDK's RequestValidator."""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone

import pytest

from portal.gateways.results import GatewayError
from portal.gateways.twilio import Sent, SmsRefused, SmsUncertain, TwilioGateway

MOBILE = "+33612345678"
AT = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def gateway(fake_twilio):
    fake_twilio.clock = lambda: AT
    return TwilioGateway(fake_twilio.account_sid, fake_twilio.auth_token, fake_twilio.sender, fake_twilio.url)


def test_send_returns_twilios_sid_and_status(fake_twilio, gateway):
    sent = gateway.send_sms(MOBILE, "Atelier Dupont : facture F-1", "https://relance.test/webhooks/twilio")
    assert isinstance(sent, Sent) and sent.sid.startswith("SM") and sent.status == "queued"
    created = fake_twilio.created[-1]
    assert (created["To"], created["From"], created["Body"], created["StatusCallback"]) == (
        MOBILE, fake_twilio.sender, "Atelier Dupont : facture F-1", "https://relance.test/webhooks/twilio")
    assert gateway.status_of(sent.sid) == "queued"
    fake_twilio.advance(sent.sid, "delivered")
    assert gateway.status_of(sent.sid) == "delivered"


def test_without_api_base_the_sdk_talks_to_twilio():
    gw = TwilioGateway("AC" + "0" * 32, "token", "+33757000001")
    assert gw.client.api.base_url == "https://api.twilio.com"


@pytest.mark.parametrize("to,code,unreachable", [("+3361", 21211, True), ("+33145678901", 21614, True)])
def test_a_refusal_is_not_uncertain_and_says_why(fake_twilio, gateway, to, code, unreachable):
    with pytest.raises(SmsRefused) as e:
        gateway.send_sms(to, "x")
    assert not isinstance(e.value, SmsUncertain) and isinstance(e.value, GatewayError)
    assert (e.value.status, e.value.code, e.value.unreachable, e.value.retry_later) == (400, code, unreachable, False)


def test_an_unsubscribed_recipient_is_refused_with_21610(fake_twilio, gateway):
    fake_twilio.reply(MOBILE, "STOP")
    with pytest.raises(SmsRefused) as e:
        gateway.send_sms(MOBILE, "x")
    assert e.value.code == 21610 and e.value.unreachable


def test_a_wrong_auth_token_is_a_refusal(fake_twilio):
    gw = TwilioGateway(fake_twilio.account_sid, "wrong", fake_twilio.sender, fake_twilio.url)
    with pytest.raises(SmsRefused) as e:
        gw.send_sms(MOBILE, "x")
    assert (e.value.status, e.value.code, e.value.unreachable) == (401, 20003, False)
    assert not fake_twilio.messages


@pytest.mark.parametrize("fault", [None, 500, 503])
def test_a_lost_answer_is_uncertain_and_the_message_is_found_again(fake_twilio, gateway, fault):
    fake_twilio.fail_next(fault)
    body = "Atelier Dupont : facture F-1 de 1 250,00 € échue le 14/12/2026. https://r.test/s/7k2m9pqr"
    with pytest.raises(SmsUncertain):
        gateway.send_sms(MOBILE, body)
    recorded = AT - timedelta(seconds=1)  # when the outbox recorded the hand-over
    sid = gateway.find_sent(MOBILE, body, recorded)
    assert sid is not None and sid == fake_twilio.sent_to(MOBILE)[0]["sid"]
    # still queued (no date_sent yet): a DateSent filter would have missed it
    assert fake_twilio.sent_to(MOBILE)[0]["date_sent"] is None


def test_find_sent_is_none_when_nothing_was_created(fake_twilio, gateway):
    gateway.send_sms(MOBILE, "another text")
    gateway.send_sms("+33756123456", "the text")
    assert gateway.find_sent(MOBILE, "the text", AT - timedelta(seconds=1)) is None


def test_find_sent_ignores_the_same_text_sent_long_before(fake_twilio, gateway):
    fake_twilio.clock = lambda: AT - timedelta(days=3)
    gateway.send_sms(MOBILE, "the text")
    fake_twilio.clock = lambda: AT
    assert gateway.find_sent(MOBILE, "the text", AT - timedelta(seconds=1)) is None
    assert gateway.find_sent(MOBILE, "the text", AT - timedelta(days=4)) is not None


def test_find_sent_reads_past_the_first_page(fake_twilio, gateway):
    gateway.send_sms(MOBILE, "the one")
    for i in range(150):  # newer messages to the same number push it to the second page (100 a page)
        gateway.send_sms(MOBILE, f"later {i}")
    assert gateway.find_sent(MOBILE, "the one", AT - timedelta(seconds=1)) == fake_twilio.sent_to(MOBILE)[0]["sid"]


def test_an_unreachable_twilio_is_uncertain_for_a_send_and_an_error_for_a_lookup():
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = TwilioGateway("AC" + "0" * 32, "token", "+33757000001", f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(SmsUncertain):
        gw.send_sms(MOBILE, "x")
    with pytest.raises(GatewayError):
        gw.find_sent(MOBILE, "x", AT)


def test_a_twilio_that_never_answers_is_uncertain():
    with socket.socket() as s:  # the kernel accepts the connection; nobody ever reads or answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        gw = TwilioGateway("AC" + "0" * 32, "token", "+33757000001", f"http://127.0.0.1:{s.getsockname()[1]}",
                           timeout=0.5)
        with pytest.raises(SmsUncertain, match="ReadTimeout"):
            gw.send_sms(MOBILE, "x")


def test_signatures_are_checked_with_the_sdks_validator(fake_twilio, gateway):
    callbacks = []
    fake_twilio.webhook_sink = lambda body, headers: callbacks.append(headers) or 200
    url = "https://relance.example.fr/webhooks/twilio"
    sent = gateway.send_sms(MOBILE, "x", url)
    fake_twilio.advance(sent.sid, "delivered")
    params = fake_twilio.deliveries[-1].params
    signature = callbacks[-1]["X-Twilio-Signature"]
    assert gateway.verify_signature(url, params, signature)
    assert not gateway.verify_signature(url, {**params, "MessageStatus": "failed"}, signature)
    assert not gateway.verify_signature("https://evil.example/webhooks/twilio", params, signature)
    assert not gateway.verify_signature(url, params, None) and not gateway.verify_signature(url, params, "")
    other = TwilioGateway(fake_twilio.account_sid, "another-token", fake_twilio.sender, fake_twilio.url)
    assert not other.verify_signature(url, params, signature)
