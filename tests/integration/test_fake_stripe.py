"""The fake Stripe server, checked with the real `stripe` SDK and real HTTP, so that tests of the
app's Stripe integration can rely on it answering and signing as Stripe does."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests
import stripe

from fakes.provider_http import ProviderServer, Reply
from fakes.stripe_server import CardDeclined, FakeStripe


class Sink:
    """Stands in for the app's webhook endpoint: verifies each delivery as the app would."""

    def __init__(self, secret):
        self.secret, self.received = secret, []

    def __call__(self, body, headers):
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], self.secret, tolerance=300)
        self.received.append(event)
        return 200


@pytest.fixture
def fake():
    server = FakeStripe().start()
    server.webhook_sink = Sink(server.webhook_secret)
    yield server
    server.stop()


@pytest.fixture
def client(fake):
    return stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url}, max_network_retries=0)


def create_session(client, **extra):
    return client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "http://portal.test/paid?s={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://portal.test/cancelled", "customer_email": "payer@example.com",
        "client_reference_id": "debtor-7", "metadata": {"invoices": "INV-1,INV-2"},
        "payment_intent_data": {"metadata": {"invoices": "INV-1,INV-2"}},
        "line_items": [
            {"price_data": {"currency": "EUR", "unit_amount": 1250, "product_data": {"name": "INV-1"}}, "quantity": 1},
            {"price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "INV-2"}}, "quantity": 2},
        ], **extra})


def submit(url, card):
    """Post the hosted form as a browser would; return the response (303 not followed)."""
    page = requests.get(url)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    return requests.post(url.split("/c/")[0] + action, data={"card": card}, allow_redirects=False)


def test_create_retrieve_and_pay_through_hosted_page(fake, client):
    session = create_session(client)
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.status, session.payment_status, session.payment_intent) == ("open", "unpaid", None)
    assert (session.amount_total, session.currency, session.metadata["invoices"]) == (2250, "eur", "INV-1,INV-2")
    assert session.url == fake.checkout_url(session.id) and session.customer_email == "payer@example.com"
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.quantity, i.amount_total, i.price.unit_amount) for i in items.data] == [
        ("INV-1", 1, 1250, 1250), ("INV-2", 2, 1000, 500)]

    page = requests.get(session.url)
    assert page.status_code == 200 and 'name="card"' in page.text and "Pay €22.50" in page.text
    assert '<label for="card">Card number</label>' in page.text and "http://portal.test/cancelled" in page.text
    reply = submit(session.url, "4242 4242 4242 4242")
    assert reply.status_code == 303 and reply.headers["Location"] == f"http://portal.test/paid?s={session.id}"

    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent.latest_charge"]})
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    pi = paid.payment_intent
    assert (pi.object, pi.status, pi.amount_received, pi.metadata["invoices"]) == (
        "payment_intent", "succeeded", 2250, "INV-1,INV-2")
    charge = pi.latest_charge
    assert (charge.object, charge.paid, charge.amount, charge.payment_intent) == ("charge", True, 2250, pi.id)
    assert client.v1.payment_intents.retrieve(pi.id).latest_charge == charge.id  # unexpanded: an id

    events = fake.webhook_sink.received
    assert [e.type for e in events] == ["checkout.session.completed", "payment_intent.succeeded"]
    assert events[0].data.object.payment_intent == pi.id and events[0].data.object.payment_status == "paid"
    assert events[0].api_version == stripe._api_version._ApiVersion.CURRENT
    assert requests.get(session.url).status_code == 400  # the page is spent


def test_signature_matches_stripe_and_rejects_tampering(fake, client):
    fake.pay(create_session(client).id)
    delivery = fake.deliveries[0]
    sig = delivery.headers["Stripe-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", sig)
    assert stripe.Webhook.construct_event(delivery.body, sig, fake.webhook_secret, tolerance=300).id
    tampered = delivery.body.replace(b'"paid"', b'"unpaid"')
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, sig, fake.webhook_secret, tolerance=300)
    old = fake.sign(delivery.body, timestamp=int(time.time()) - 600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, old, fake.webhook_secret, tolerance=300)
    assert fake.sign(b"x", 1, "whsec_a") == stripe.WebhookSignature.generate_signature_header("x", "whsec_a", 1)


def test_webhook_over_http_can_call_back_into_the_fake(fake, client):
    """As the app does: its handler re-fetches the session while the fake is still delivering."""
    seen = []

    def hook(req):
        event = stripe.Webhook.construct_event(req.body, req.headers["stripe-signature"], fake.webhook_secret)
        obj = event.data.object
        fetched = (client.v1.checkout.sessions if obj.object == "checkout.session" else client.v1.payment_intents)
        seen.append(fetched.retrieve(obj.id).status)
        return Reply(200, {"received": True})
    app = ProviderServer()
    app.route("POST", "/hooks/stripe", hook)
    app.start()
    try:
        fake.webhook_sink, fake.webhook_url = None, app.url + "/hooks/stripe"
        session = create_session(client)
        assert submit(session.url, "4242424242424242").status_code == 303
        assert seen == ["complete", "succeeded"] and [d.status for d in fake.deliveries] == [200, 200]
    finally:
        app.stop()


def test_declined_card_leaves_session_open(fake, client):
    session = create_session(client)
    reply = submit(session.url, "4000000000000002")
    assert reply.status_code == 402 and "Your card was declined." in reply.text
    assert fake.sessions[session.id]["status"] == "open" and not fake.events
    with pytest.raises(CardDeclined):
        fake.pay(session.id, card="4000000000000002")


def test_3ds_complete_and_fail(fake, client):
    first, second = create_session(client), create_session(client)
    for session, result in ((first, "complete"), (second, "fail")):
        reply = submit(session.url, "4000000000003220")
        assert reply.status_code == 303 and reply.headers["Location"] == f"/c/3ds/{session.id}"
        page = requests.get(fake.url + reply.headers["Location"])
        assert "Complete authentication" in page.text and "Fail authentication" in page.text
        done = requests.post(fake.url + reply.headers["Location"], data={"result": result}, allow_redirects=False)
        if result == "complete":
            assert done.status_code == 303 and done.headers["Location"].endswith(session.id)
            assert fake.sessions[session.id]["payment_status"] == "paid"
        else:
            assert done.status_code == 402 and "Your card was declined." in done.text
            assert fake.sessions[session.id]["status"] == "open"


def test_refund_partial_then_full(fake, client):
    session_id = create_session(client).id
    fake.pay(session_id)
    pi = fake.sessions[session_id]["payment_intent"]
    part = client.v1.refunds.create(params={"payment_intent": pi, "amount": 1000})
    assert (part.object, part.amount, part.status) == ("refund", 1000, "succeeded")
    charge = client.v1.charges.retrieve(part.charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": pi, "amount": 5000})
    rest = fake.refund(pi)
    assert rest["amount"] == 1250 and client.v1.refunds.retrieve(rest["id"]).amount == 1250
    assert fake.charges[part.charge]["refunded"] is True
    types = [e.type for e in fake.webhook_sink.received][2:]
    assert types == ["refund.created", "charge.refunded"] * 2
    assert fake.webhook_sink.received[-1].data.object.amount_refunded == 2250


def test_dispute_and_close(fake, client):
    session_id = create_session(client).id
    fake.pay(session_id)
    dp = fake.dispute(fake.sessions[session_id]["payment_intent"])
    assert (dp["status"], dp["reason"], dp["amount"]) == ("needs_response", "fraudulent", 2250)
    assert client.v1.charges.retrieve(dp["charge"]).disputed is True
    fake.close_dispute(dp["id"], "won")
    assert client.v1.disputes.retrieve(dp["id"]).status == "won"
    assert [e.type for e in fake.webhook_sink.received][-2:] == ["charge.dispute.created", "charge.dispute.closed"]
    assert fake.webhook_sink.received[-2].data.object.status == "needs_response"  # a snapshot, not a live view


def test_async_payment_pending_delivery_and_redelivery(fake, client):
    fake.auto_deliver = False
    session_id = create_session(client).id
    fake.complete_async(session_id)
    assert (fake.sessions[session_id]["status"], fake.sessions[session_id]["payment_status"]) == ("complete", "unpaid")
    assert fake.payment_intents[fake.sessions[session_id]["payment_intent"]]["status"] == "processing"
    fake.settle_async(session_id)
    assert not fake.deliveries and len(fake.pending) == 3
    later = fake.pending[1]
    fake.deliver(later)  # out of order
    fake.deliver_pending()
    fake.deliver(later)  # again: same id
    got = fake.webhook_sink.received
    assert [e.type for e in got] == ["checkout.session.async_payment_succeeded", "checkout.session.completed",
                                     "payment_intent.succeeded", "checkout.session.async_payment_succeeded"]
    assert got[0].id == got[-1].id and not fake.pending


def test_expire_and_http_test_actions(fake, client):
    session = create_session(client)
    reply = requests.post(f"{fake.url}/_test/expire/{session.id}")
    assert reply.status_code == 200 and reply.json()["status"] == "expired"
    assert fake.webhook_sink.received[-1].type == "checkout.session.expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    other = create_session(client)
    assert requests.post(f"{fake.url}/_test/pay/{other.id}", json={"card": "4000000000000002"}).status_code == 402
    assert requests.post(f"{fake.url}/_test/pay/{other.id}").json()["success_url"].endswith(other.id)


def test_idempotency_key_replay_and_conflict(fake, client):
    opts = {"idempotency_key": "create-1"}
    params = {"mode": "payment", "success_url": "http://x/ok", "line_items": [
        {"price_data": {"currency": "eur", "unit_amount": 100, "product_data": {"name": "A"}}, "quantity": 1}]}
    first = client.v1.checkout.sessions.create(params=params, options=opts)
    again = client.v1.checkout.sessions.create(params=params, options=opts)
    assert first.id == again.id and len(fake.sessions) == 1
    params["line_items"][0]["quantity"] = 2
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=params, options=opts)


def test_errors(fake, client):
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake.url}).v1.payment_intents.retrieve("pi_1")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.checkout.sessions.create(params={"mode": "payment", "success_url": "http://x/ok"})
    assert (bad.value.code, bad.value.param) == ("parameter_missing", "line_items")
    mixed = {"price_data": {"currency": "usd", "unit_amount": 1, "product_data": {"name": "B"}}, "quantity": 1}
    with pytest.raises(stripe.InvalidRequestError):
        create_session(client, line_items=[mixed, {**mixed, "price_data": {**mixed["price_data"], "currency": "eur"}}])
    body = requests.get(f"{fake.url}/v1/charges/ch_x", headers={"Authorization": "Bearer nope"}).json()
    assert body["error"]["type"] == "invalid_request_error" and "Invalid API Key" in body["error"]["message"]
    assert json.loads(json.dumps(fake.events)) == fake.events  # events are plain JSON
