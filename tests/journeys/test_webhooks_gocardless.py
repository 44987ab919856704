"""POST /webhooks/gocardless over real HTTP (the live app): the same events delivered many
times and concurrently are applied once; unsigned, wrongly signed, tampered or malformed bodies
are refused with a 4xx and leave no row; events delivered out of order (newest first) never move
a mandate or a payment backwards. SQLite and PostgreSQL."""
from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.extensions import db
from portal.gateways import MandateState, PaymentState
from portal.models import (ATTEMPT_RANK, MANDATE_RANK, Event, Mandate, Payment, PaymentAttempt, PaymentReversal,
                           WebhookEvent)
from portal.services import mandates, payments
from support import IBAN, count, deliver_ten_times, mandate_row, portal_login, post_webhook, set_up_mandate


@pytest.fixture
def app_config(providers_config):
    return providers_config


@pytest.fixture
def debtor(seeded, client, app, creditor, live_app):
    """D2 logged into the portal in `client`."""
    portal_login(client, app, "D2", creditor.id)
    return seeded


def rows() -> tuple[int, int, int]:
    return count(WebhookEvent), count(Payment), count(Event)


def post(live_app, body: bytes, headers: dict) -> requests.Response:
    return post_webhook(live_app.url + "/webhooks/gocardless", body, headers)


def attempt_row() -> PaymentAttempt:
    db.session.expire_all()
    return db.session.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id.desc())).first()


def collect(client, *numbers) -> PaymentAttempt:
    r = client.post("/portal/pay", data={"method": "direct_debit", "invoice": list(numbers)})
    assert r.status_code == 303 and "/portal/payments/" in r.headers["Location"], r.data
    attempt = attempt_row()
    assert attempt.status == "processing" and attempt.provider_ref
    return attempt


def signed(fake, events: list[dict]) -> tuple[bytes, dict]:
    body = json.dumps({"events": events, "meta": {"webhook_id": "WB_test"}}).encode()
    return body, {"Webhook-Signature": fake.sign(body)}


def test_same_events_ten_times_five_concurrently(debtor, client, fake_gocardless, live_app, app):
    set_up_mandate(client, fake_gocardless)
    attempt = collect(client, "F-3", "F-4")
    fake_gocardless.auto_deliver = False
    fake_gocardless.confirm_payment(attempt.provider_ref)
    events = fake_gocardless.pending[:]  # payments.created, submitted, confirmed
    assert [e["action"] for e in events] == ["created", "submitted", "confirmed"]
    body, headers = signed(fake_gocardless, events)
    before = count(WebhookEvent)

    answers = deliver_ten_times(live_app.url + "/webhooks/gocardless", body, headers)

    assert len(answers) == 10 and all(200 <= s < 300 for s in answers), answers
    for e in events:
        assert count(WebhookEvent, WebhookEvent.provider == "gocardless", WebhookEvent.event_id == e["id"]) == 1
    assert count(WebhookEvent) == before + 3
    assert count(Payment) == 1 and count(PaymentReversal) == 0
    payment = db.session.scalar(select(Payment))
    assert (payment.provider, payment.reference, payment.amount) == ("gocardless", attempt.provider_ref, 509999)
    assert count(Event, Event.type == "payment.received") == 1
    assert count(Event, Event.type == "invoice.paid") == 2
    assert attempt_row().status == "succeeded" and attempt_row().payment_id == payment.id
    for n in ("F-3", "F-4"):
        inv = debtor.get(f"/invoices/{n}").json
        assert (inv["status"], inv["balance"]) == ("paid", "0.00")
    outcomes = set(db.session.scalars(select(WebhookEvent.outcome).where(
        WebhookEvent.event_id.in_([e["id"] for e in events]))))
    assert outcomes == {"applied"}
    # The fake's own (later) delivery of the same events: duplicates, nothing more.
    assert all(d.status == 200 for d in fake_gocardless.deliver_pending())
    assert count(WebhookEvent) == before + 3 and count(Payment) == 1
    assert count(Event, Event.type == "payment.received") == 1


def _bad_deliveries(fake, event: dict):
    body, _ = signed(fake, [event])
    tampered = body.replace(b'"confirmed"', b'"failed"')
    assert tampered != body
    not_json = b'{"events": [{"id": "EV1", '
    events_x = json.dumps({"events": "x"}).encode()
    no_id = json.dumps({"events": [{"resource_type": "payments", "action": "confirmed", "links": {}}]}).encode()
    bad_links = json.dumps({"events": [{**event, "links": "PM1"}]}).encode()
    return {
        "unsigned": (body, {}),
        "empty signature": (body, {"Webhook-Signature": ""}),
        "other secret": (body, {"Webhook-Signature": fake.sign(body, secret="someone_elses_secret")}),
        "garbled signature": (body, {"Webhook-Signature": "not hex at all"}),
        "tampered body": (tampered, {"Webhook-Signature": fake.sign(body)}),
        "malformed JSON": (not_json, {"Webhook-Signature": fake.sign(not_json)}),
        "events not a list": (events_x, {"Webhook-Signature": fake.sign(events_x)}),
        "no events key": (b"{}", {"Webhook-Signature": fake.sign(b"{}")}),
        "JSON array": (b"[]", {"Webhook-Signature": fake.sign(b"[]")}),
        "event without id": (no_id, {"Webhook-Signature": fake.sign(no_id)}),
        "links not an object": (bad_links, {"Webhook-Signature": fake.sign(bad_links)}),
        "not UTF-8": (b"\xff\xfe{}", {"Webhook-Signature": fake.sign(b"\xff\xfe{}")}),
    }


def test_refused_deliveries_record_nothing(debtor, client, fake_gocardless, live_app, app):
    set_up_mandate(client, fake_gocardless)
    attempt = collect(client, "F-3")
    fake_gocardless.auto_deliver = False
    fake_gocardless.confirm_payment(attempt.provider_ref)
    confirmed = next(e for e in fake_gocardless.pending if e["action"] == "confirmed")
    before = rows()
    for name, (body, headers) in _bad_deliveries(fake_gocardless, confirmed).items():
        r = post(live_app, body, headers)
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert "error" in r.json(), name
        assert rows() == before, name
    assert count(Payment) == 0 and attempt_row().status == "processing"
    assert debtor.get("/invoices/F-3").json["status"] == "open"
    # The genuine delivery still works afterwards.
    body, headers = signed(fake_gocardless, [confirmed])
    assert post(live_app, body, headers).status_code == 200
    assert count(Payment) == 1 and debtor.get("/invoices/F-3").json["status"] == "paid"
    assert count(WebhookEvent) == before[0] + 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                      st.dictionaries(st.sampled_from(["events", "meta", "id", "x"]), st.recursive(
                          st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(
                              st.sampled_from(["id", "resource_type", "action", "links", "y"]), c, max_size=4)),
                          max_size=3).map(lambda d: json.dumps(d).encode())),
       signature=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                              max_size=80).map(str.strip)),  # requests refuses edge spaces
       sign=st.booleans())
def test_garbage_is_a_4xx(fake_gocardless, live_app, app, body, signature, sign):
    headers = {}
    if sign:  # correctly signed garbage: refused as malformed, or accepted and ignored; never a 5xx
        headers["Webhook-Signature"] = fake_gocardless.sign(body)
    elif signature is not None:
        headers["Webhook-Signature"] = signature
    r = post(live_app, body, headers)
    assert r.status_code < 500, (body, headers, r.status_code, r.text)
    if sign:  # well signed: refused as malformed, or a well-formed batch of events not ours (ignored)
        assert r.status_code in (200, 400), (body, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json()["applied"] == 0
    else:
        assert r.status_code == 400, (body, headers, r.status_code, r.text)
    assert count(Payment) == 0 and count(Mandate) == 0 and count(Event) == 0
    assert count(WebhookEvent, WebhookEvent.outcome != "ignored") == 0


def test_out_of_order(debtor, client, fake_gocardless, live_app, app):
    fake_gocardless.auto_deliver = False
    r = client.post("/portal/mandate")
    flow_id = r.headers["Location"].rsplit("/", 1)[1]
    fake_gocardless.authorise(flow_id, iban=IBAN, account_holder_name="Beta Ltd")
    mandate_id = next(iter(fake_gocardless.mandates))
    fake_gocardless.activate_mandate(mandate_id)
    # Newest first: mandates.active, submitted, created, then billing_requests.fulfilled.
    mandate_events = fake_gocardless.pending[:]
    fake_gocardless.pending.clear()
    assert [f"{e['resource_type']}.{e['action']}" for e in mandate_events] == [
        "billing_requests.fulfilled", "mandates.created", "mandates.submitted", "mandates.active"]
    seen = ["requested"]
    for event in reversed(mandate_events):
        assert fake_gocardless.deliver([event]).status == 200
        status = mandate_row().status
        assert MANDATE_RANK[status] >= MANDATE_RANK[seen[-1]], (seen, status)
        seen.append(status)
    # Until the billing request links our row to the mandate, its events are not ours to apply.
    assert seen[1:] == ["requested", "requested", "requested", "active"]
    m = mandate_row()
    assert (m.status, m.mandate_ref, m.bank_name, m.account_ending) == ("active", mandate_id, "Fake Bank", "89")
    assert count(Event, Event.type == "mandate.active") == 1
    # Told again in the right order: nothing moves back.
    for event in mandate_events:
        assert fake_gocardless.deliver([{**event, "id": event["id"] + "-replay"}]).status == 200
        assert mandate_row().status == "active"
    assert mandate_row().status == "active" and count(Event, Event.type.like("mandate.%")) == 2

    attempt = collect(client, "F-3", "F-4")
    pm = attempt.provider_ref
    fake_gocardless.submit_payment(pm)
    fake_gocardless.confirm_payment(pm)
    fake_gocardless.pay_out(pm)
    fake_gocardless.charge_back(pm)
    payment_events = fake_gocardless.pending[:]
    fake_gocardless.pending.clear()
    assert [e["action"] for e in payment_events] == ["created", "submitted", "confirmed", "paid_out", "charged_back"]
    statuses = ["processing"]
    for event in reversed(payment_events):
        assert fake_gocardless.deliver([event]).status == 200
        a = attempt_row()
        assert ATTEMPT_RANK[a.status] >= ATTEMPT_RANK[statuses[-1]], (statuses, a.status)
        statuses.append(a.status)
        assert count(Payment) == 1 and count(PaymentReversal) == 1  # from the first (newest) delivery on
    assert statuses[1:] == ["succeeded"] * 5
    payment = db.session.scalar(select(Payment))
    assert (payment.amount, payment.reversed_amount, payment.reference) == (509999, 509999, pm)
    reversal = db.session.scalar(select(PaymentReversal))
    assert (reversal.kind, reversal.amount) == ("chargeback", 509999)
    for n in ("F-3", "F-4"):
        inv = debtor.get(f"/invoices/{n}").json
        assert (inv["status"], inv["amount_paid"]) == ("open", "0.00"), inv
    assert count(Event, Event.type == "payment.received") == 1
    assert count(Event, Event.type == "payment.charged_back") == 1
    assert count(Event, Event.type == "invoice.reopened") == 2
    assert count(WebhookEvent, WebhookEvent.provider == "gocardless") == 4 + 4 + 5  # each event id once

    # A stale read applied last (a slow re-fetch overtaken by a newer one): nothing moves back.
    events_before = count(Event)
    assert mandates.apply_state(MandateState(mandate_id, "pending_submission")) == "applied"
    assert payments.apply_payment_state("gocardless", PaymentState(pm, "processing", pm, 509999, "EUR")) == "applied"
    db.session.commit()
    assert mandate_row().status == "active" and attempt_row().status == "succeeded"
    assert count(Payment) == 1 and count(PaymentReversal) == 1
    assert count(Event) == events_before
