"""POST /webhooks/stripe over real HTTP (the live app): an event delivered many times and
concurrently is applied once; unsigned, wrongly signed, stale or malformed bodies are refused
with a 4xx and leave no row; events out of order never move a payment backwards."""
from __future__ import annotations

import json
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.extensions import db
from portal.models import Event, Invoice, Payment, PaymentAttempt, PaymentReversal, WebhookEvent
from support import count, deliver_ten_times, portal_login, post_webhook


@pytest.fixture
def app_config(providers_config):
    return providers_config


@pytest.fixture
def shop(seeded, client, app, creditor, live_app, fake_stripe):
    """D1 logged in; the fake holds its webhooks back until the test delivers them."""
    fake_stripe.auto_deliver = False
    portal_login(client, app, "D1", creditor.id)
    return seeded


def checkout(client, **form) -> str:
    r = client.post("/portal/pay", data={"method": "card", **form})
    assert r.status_code == 303 and "/c/pay/" in r.headers["Location"], r.data
    return r.headers["Location"].rsplit("/", 1)[1]


def rows() -> tuple[int, int, int]:
    return count(WebhookEvent), count(Payment), count(Event)


def event_of(fake, type_: str) -> dict:
    return next(e for e in fake.events if e["type"] == type_)


def post(live_app, body: bytes, headers: dict) -> requests.Response:
    return post_webhook(live_app.url + "/webhooks/stripe", body, headers)


def attempt_of(sid: str) -> PaymentAttempt:
    db.session.expire_all()
    return db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))


def test_same_event_ten_times_five_concurrently(shop, client, fake_stripe, live_app, app):
    sid = checkout(client, invoice=["F-1", "F-2"])
    fake_stripe.pay(sid)
    event = event_of(fake_stripe, "checkout.session.completed")
    body = json.dumps(event).encode()
    headers = {"Stripe-Signature": fake_stripe.sign(body)}

    answers = deliver_ten_times(live_app.url + "/webhooks/stripe", body, headers)

    assert len(answers) == 10 and all(200 <= s < 300 for s in answers), answers
    assert count(WebhookEvent, WebhookEvent.event_id == event["id"]) == 1 and count(WebhookEvent) == 1
    assert count(Payment) == 1
    assert count(Event, Event.type == "payment.received") == 1
    assert count(Event, Event.type == "invoice.paid") == 2
    for n in ("F-1", "F-2"):
        inv = shop.get(f"/invoices/{n}").json
        assert (inv["status"], inv["balance"]) == ("paid", "0.00")
    stored = db.session.scalar(select(WebhookEvent))
    assert (stored.provider, stored.type, stored.outcome) == ("stripe", "checkout.session.completed", "applied")
    # The fake's own delivery of the other event is applied (ignored: not one we act on) once too.
    assert fake_stripe.deliver(event_of(fake_stripe, "payment_intent.succeeded")).status == 200
    assert count(WebhookEvent) == 2 and count(Payment) == 1


def _bad_deliveries(fake, event: dict):
    body = json.dumps(event).encode()
    now = int(time.time())
    tampered = body.replace(b'"checkout.session.completed"', b'"checkout.session.expired"')
    assert tampered != body
    not_json, array = b'{"id": "evt_1", "type": ', json.dumps([event]).encode()
    no_object = json.dumps({"id": "evt_2", "type": "checkout.session.completed", "data": {}}).encode()
    return {
        "unsigned": (body, {}),
        "empty signature": (body, {"Stripe-Signature": ""}),
        "other secret": (body, {"Stripe-Signature": fake.sign(body, secret="whsec_someone_else")}),
        "tampered body": (tampered, {"Stripe-Signature": fake.sign(body)}),
        "stale": (body, {"Stripe-Signature": fake.sign(body, timestamp=now - 301)}),
        "garbled header": (body, {"Stripe-Signature": "v1=nothex,t=soon"}),
        "malformed JSON": (not_json, {"Stripe-Signature": fake.sign(not_json)}),
        "JSON array": (array, {"Stripe-Signature": fake.sign(array)}),
        "JSON string": (b'"evt"', {"Stripe-Signature": fake.sign(b'"evt"')}),
        "no data.object": (no_object, {"Stripe-Signature": fake.sign(no_object)}),
        "not UTF-8": (b"\xff\xfe{}", {"Stripe-Signature": fake.sign(b"\xff\xfe{}")}),
    }


def test_refused_deliveries_record_nothing(shop, client, fake_stripe, live_app, app):
    sid = checkout(client, only="F-1")
    fake_stripe.pay(sid)
    event = event_of(fake_stripe, "checkout.session.completed")
    before = rows()
    for name, (body, headers) in _bad_deliveries(fake_stripe, event).items():
        r = post(live_app, body, headers)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert "error" in r.json(), name
        assert rows() == before, name
    assert shop.get("/invoices/F-1").json["status"] == "open" and attempt_of(sid).status == "created"
    # The genuine delivery still works afterwards, and a stale timestamp just inside the window too.
    body = json.dumps(event).encode()
    r = post(live_app, body, {"Stripe-Signature": fake_stripe.sign(body, timestamp=int(time.time()) - 250)})
    assert r.status_code == 200 and count(Payment) == 1
    assert shop.get("/invoices/F-1").json["status"] == "paid"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      st.dictionaries(st.text(max_size=10), st.recursive(
                          st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3)),
                          max_size=5).map(lambda d: json.dumps(d).encode())),
       signature=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                              max_size=80).map(str.strip)),  # requests refuses edge spaces
       sign=st.booleans())
def test_garbage_is_a_4xx(fake_stripe, live_app, app, body, signature, sign):
    headers = {}
    if sign:  # correctly signed garbage: refused as malformed, still never a 5xx
        headers["Stripe-Signature"] = fake_stripe.sign(body)
    elif signature is not None:
        headers["Stripe-Signature"] = signature
    r = post(live_app, body, headers)
    assert 400 <= r.status_code < 500, (body, headers, r.status_code, r.text)
    assert count(WebhookEvent) == 0 and count(Payment) == 0


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
def test_signed_event_with_a_non_json_number_is_a_4xx(fake_stripe, live_app, app, constant):
    # Python's parser reads these; PostgreSQL's JSON type refuses them at the insert (was a 500).
    body = ('{"id": "evt_odd", "object": "event", "type": "checkout.session.completed", '
            '"data": {"object": {"id": "cs_x", "amount_total": %s}}}' % constant).encode()
    r = post(live_app, body, {"Stripe-Signature": fake_stripe.sign(body)})
    assert r.status_code == 400, (r.status_code, r.text)
    assert count(WebhookEvent) == 0 and count(Payment) == 0


def test_refund_before_the_payment(shop, client, fake_stripe, live_app, app):
    sid = checkout(client, only="F-1")
    fake_stripe.pay(sid)
    pi = fake_stripe.sessions[sid]["payment_intent"]
    fake_stripe.refund(pi, amount=50000)  # 500.00 of 1200.00
    assert fake_stripe.deliveries == [] and len(fake_stripe.pending) == 4
    refunded = event_of(fake_stripe, "charge.refunded")

    # No payment recorded yet (its own event is late): the refund brings it in from Stripe's
    # current state of the session, then takes the refunded part back.
    assert fake_stripe.deliver(refunded).status == 200
    assert count(Payment) == 1 and count(PaymentReversal) == 1
    assert shop.get("/invoices/F-1").json["status"] == "partially_paid"
    assert fake_stripe.deliver(event_of(fake_stripe, "checkout.session.completed")).status == 200
    assert fake_stripe.deliver(refunded).status == 200  # told again: a duplicate
    assert all(d.status == 200 for d in fake_stripe.deliver_pending())

    assert count(Payment) == 1 and count(PaymentReversal) == 1
    payment = db.session.scalar(select(Payment))
    assert (payment.amount, payment.reversed_amount, payment.reference) == (120000, 50000, pi)
    inv = shop.get("/invoices/F-1").json
    assert (inv["status"], inv["amount_paid"], inv["balance"]) == ("partially_paid", "700.00", "500.00")
    assert count(Event, Event.type == "payment.received") == 1
    assert count(Event, Event.type == "payment.refunded") == 1
    assert count(Event, Event.type == "invoice.reopened") == 1
    assert attempt_of(sid).status == "succeeded"

    # A second refund, its events delivered twice and in reverse: applied once more, exactly.
    fake_stripe.refund(pi, amount=10000)
    for event in reversed(fake_stripe.pending[:] * 2):
        assert fake_stripe.deliver(event).status == 200
    db.session.expire_all()
    assert db.session.scalar(select(Payment)).reversed_amount == 60000 and count(PaymentReversal) == 2
    assert shop.get("/invoices/F-1").json["amount_paid"] == "600.00"


def test_chargeback_before_the_payment(shop, client, fake_stripe, live_app, app):
    sid = checkout(client, only="F-1")
    fake_stripe.pay(sid)
    pi = fake_stripe.sessions[sid]["payment_intent"]
    fake_stripe.dispute(pi)
    # The chargeback comes first: the payment is brought in from Stripe, then taken back whole.
    assert fake_stripe.deliver(event_of(fake_stripe, "charge.dispute.created")).status == 200
    payment = db.session.scalar(select(Payment))
    assert (payment.amount, payment.reversed_amount, payment.reference) == (120000, 120000, pi)
    assert shop.get("/invoices/F-1").json["status"] == "open"
    assert attempt_of(sid).status == "succeeded"
    assert all(d.status == 200 for d in fake_stripe.deliver_pending())  # the late checkout event and the rest
    db.session.expire_all()
    assert count(Payment) == 1 and count(PaymentReversal) == 1
    assert count(Event, Event.type == "payment.received") == 1
    assert count(Event, Event.type == "payment.charged_back") == 1
    assert shop.get("/invoices/F-1").json["balance"] == "1200.00"


def test_old_events_never_move_the_attempt_back(shop, client, fake_stripe, live_app, app):
    sid = checkout(client, only="F-2")
    fake_stripe.complete_async(sid)
    completed = event_of(fake_stripe, "checkout.session.completed")
    fake_stripe.settle_async(sid, succeed=True)
    # Newest first, then the old ones.
    for type_ in ("payment_intent.succeeded", "checkout.session.async_payment_succeeded"):
        assert fake_stripe.deliver(event_of(fake_stripe, type_)).status == 200
    assert attempt_of(sid).status == "succeeded"
    assert fake_stripe.deliver(completed).status == 200
    # An expiry notice for the same session, signed by Stripe, arriving late (e.g. after a replay).
    stale = {**completed, "id": "evt_late_expired", "type": "checkout.session.expired",
             "data": {"object": {**completed["data"]["object"], "status": "expired"}}}
    assert fake_stripe.deliver(stale).status == 200
    attempt = attempt_of(sid)
    assert attempt.status == "succeeded" and attempt.payment_id is not None
    assert count(Payment) == 1 and shop.get("/invoices/F-2").json["status"] == "paid"
    types = list(db.session.scalars(select(Event.type).where(Event.type.like("payment.%")).order_by(Event.id)))
    assert types == ["payment.started", "payment.received"]
    assert count(WebhookEvent) == 4

    # A session that expired unpaid stays expired whatever old event comes after.
    sid2 = checkout(client, only="F-1")
    fake_stripe.expire(sid2)
    assert fake_stripe.deliver(event_of(fake_stripe, "checkout.session.expired")).status == 200
    assert attempt_of(sid2).status == "expired"
    replay = {**stale, "id": "evt_old_open", "type": "checkout.session.completed",
              "data": {"object": {**fake_stripe.sessions[sid2], "status": "complete", "payment_status": "paid"}}}
    assert fake_stripe.deliver(replay).status == 200
    assert attempt_of(sid2).status == "expired" and count(Payment) == 1
    assert shop.get("/invoices/F-1").json["status"] == "open"
    assert db.session.scalar(select(Invoice.status).where(Invoice.number == "F-1")) == "open"
