"""The fake GoCardless server, driven by the real gocardless-pro SDK over HTTP: the shapes it
answers, the SDK's own error and idempotency handling against it, the hosted flow form, and
webhooks that the SDK's own signature check accepts."""
from __future__ import annotations

import json
import re

import gocardless_pro
import pytest
import requests
from gocardless_pro import errors, webhooks

from fakes.gocardless_server import FakeGoCardless


class Sink:
    """A webhook receiver that works as the app's would: checks the signature with the SDK and
    re-fetches what each event links to from the fake (which must not hold its lock meanwhile)."""

    def __init__(self, secret, client):
        self.secret, self.client, self.bodies, self.events, self.fetched = secret, client, [], [], []

    def __call__(self, body, headers):
        self.bodies.append((body, headers))
        for event in webhooks.parse(body, self.secret, headers["Webhook-Signature"]):
            self.events.append(event)
            service = getattr(self.client, event.resource_type)
            self.fetched.append(service.get(getattr(event.links, event.resource_type[:-1])).status)
        return 204

    def actions(self):
        return [f"{e.resource_type}.{e.action}" for e in self.events]


@pytest.fixture
def fake():
    server = FakeGoCardless().start()
    yield server
    server.stop()


@pytest.fixture
def client(fake):
    client = gocardless_pro.Client(access_token=fake.access_token, base_url=fake.url)
    fake.webhook_sink = Sink(fake.webhook_secret, client)
    return client


def set_up_mandate(fake, client, activate=True):
    brq = client.billing_requests.create(params={
        "mandate_request": {"currency": "EUR", "scheme": "sepa_core"}, "metadata": {"debtor": "42"}})
    flow = client.billing_request_flows.create(params={
        "redirect_uri": "http://portal.test/gc/return", "exit_uri": "http://portal.test/gc/exit",
        "links": {"billing_request": brq.id}})
    fake.authorise(flow.id)
    mandate_id = client.billing_requests.get(brq.id).links.mandate_request_mandate
    if activate:
        fake.activate_mandate(mandate_id)
    return mandate_id


def pay(client, mandate_id, amount=1250, **extra):
    return client.payments.create(params={"amount": amount, "currency": "EUR",
                                          "links": {"mandate": mandate_id}, **extra})


def test_billing_request_flow_through_the_hosted_form(fake, client):
    brq = client.billing_requests.create(params={
        "mandate_request": {"currency": "EUR", "scheme": "sepa_core"}, "metadata": {"debtor": "42"}})
    assert brq.id.startswith("BRQ") and brq.status == "pending"
    assert brq.links.customer.startswith("CU") and brq.metadata == {"debtor": "42"}
    flow = client.billing_request_flows.create(params={
        "redirect_uri": "http://portal.test/gc/return", "exit_uri": "http://portal.test/gc/exit",
        "links": {"billing_request": brq.id}, "lock_customer_details": True,
        "prefilled_customer": {"given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com"}})
    assert flow.id.startswith("BRF") and flow.authorisation_url == f"{fake.url}/flow/{flow.id}"
    assert flow.prefilled_customer.email == "ada@example.com"

    page = requests.get(flow.authorisation_url)
    assert page.status_code == 200
    for text in ('<label for="account_holder_name">Account holder name</label>', '<label for="iban">IBAN</label>',
                 'value="Ada Lovelace"', 'value="DE89370400440532013000"', "Set up Direct Debit",
                 '<a href="http://portal.test/gc/exit">Cancel</a>'):
        assert text in page.text

    bad = requests.post(flow.authorisation_url, data={"account_holder_name": "Ada Lovelace", "iban": "nope"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    done = requests.post(flow.authorisation_url, allow_redirects=False,
                         data={"account_holder_name": "Ada Lovelace", "iban": "FR14 2004 1010 0505 0001 3M02 606"})
    assert done.status_code == 303 and done.headers["Location"] == "http://portal.test/gc/return"
    assert requests.get(flow.authorisation_url).status_code == 400  # a flow is used once

    brq = client.billing_requests.get(brq.id)
    assert brq.status == "fulfilled"
    mandate = client.mandates.get(brq.links.mandate_request_mandate)
    assert (mandate.status, mandate.scheme) == ("pending_submission", "sepa_core")
    assert mandate.links.customer == brq.links.customer
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", mandate.next_possible_charge_date)
    account = client.customer_bank_accounts.get(mandate.links.customer_bank_account)
    assert (account.account_holder_name, account.account_number_ending, account.bank_name, account.country_code,
            account.currency, account.enabled) == ("Ada Lovelace", "06", "Fake Bank", "FR", "EUR", True)
    customer = client.customers.get(brq.links.customer)
    assert (customer.given_name, customer.family_name, customer.email) == ("Ada", "Lovelace", "ada@example.com")

    assert fake.webhook_sink.actions() == ["billing_requests.fulfilled", "mandates.created"]
    fulfilled = fake.webhook_sink.events[0]
    assert fulfilled.links.mandate_request_mandate == mandate.id
    assert fulfilled.resource_metadata == {"debtor": "42"}

    fake.activate_mandate(mandate.id)
    assert client.mandates.get(mandate.id).status == "active"
    assert fake.webhook_sink.actions()[2:] == ["mandates.submitted", "mandates.active"]
    assert len(fake.webhook_sink.bodies) == 2  # one webhook per action
    # Each event's object was re-fetched from the fake during its delivery.
    assert fake.webhook_sink.fetched == ["fulfilled", "pending_submission", "active", "active"]


def test_payment_lifecycle_and_idempotent_create(fake, client):
    mandate_id = set_up_mandate(fake, client)
    key = {"Idempotency-Key": "invoice-7-attempt-1"}
    first = client.payments.create(headers=key, params={
        "amount": 1250, "currency": "EUR", "description": "Invoice 7", "metadata": {"invoice": "7"},
        "links": {"mandate": mandate_id}})
    again = client.payments.create(params={"amount": 1250, "currency": "EUR", "links": {"mandate": mandate_id}},
                                   headers=key)
    assert again.id == first.id and len(fake.payments) == 1
    assert (first.status, first.amount, first.amount_refunded, first.currency, first.links.mandate) == (
        "pending_submission", 1250, 0, "EUR", mandate_id)
    assert first.charge_date == client.mandates.get(mandate_id).next_possible_charge_date

    sink = fake.webhook_sink
    seen = len(sink.events)
    assert [e["action"] for e in fake.pending] == ["created"]  # the app's own call: sent later
    fake.confirm_payment(first.id)
    assert client.payments.get(first.id).status == "confirmed"
    assert sink.actions()[seen:] == ["payments.created", "payments.submitted", "payments.confirmed"]
    confirmed = sink.events[-1]
    assert (confirmed.links.payment, confirmed.details.origin, confirmed.details.cause) == (
        first.id, "gocardless", "payment_confirmed")
    assert confirmed.resource_metadata == {"invoice": "7"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", confirmed.created_at)

    fake.pay_out(first.id)
    assert client.payments.get(first.id).links.payout == sink.events[-1].links.payout
    fake.charge_back(first.id)
    assert client.payments.get(first.id).status == "charged_back"
    assert sink.events[-1].details.reason_code == "MD06"
    with pytest.raises(ValueError):
        fake.confirm_payment(first.id)  # charged back payments stay charged back

    failing = pay(client, mandate_id)
    fake.fail_payment(failing.id)
    failed = sink.events[-1]
    assert client.payments.get(failing.id).status == "failed"
    assert (failed.action, failed.details.origin, failed.details.reason_code) == ("failed", "bank", "AM04")

    cancelled = client.payments.cancel(pay(client, mandate_id).id)
    assert cancelled.status == "cancelled"
    with pytest.raises(errors.InvalidStateError):
        client.payments.cancel(cancelled.id)


def test_cancelled_mandate_refuses_payments(fake, client):
    mandate_id = set_up_mandate(fake, client)
    waiting = pay(client, mandate_id)
    assert client.mandates.cancel(mandate_id).status == "cancelled"
    assert client.payments.get(waiting.id).status == "cancelled"  # cancelled with its mandate
    with pytest.raises(errors.InvalidStateError) as refused:
        pay(client, mandate_id)
    assert refused.value.errors[0]["reason"] == "mandate_is_inactive"
    with pytest.raises(errors.InvalidStateError):
        client.mandates.cancel(mandate_id)
    fake.deliver_pending()
    assert fake.webhook_sink.actions()[-3:] == ["payments.created", "mandates.cancelled", "payments.cancelled"]


def test_failed_mandate(fake, client):
    mandate_id = set_up_mandate(fake, client, activate=False)
    fake.fail_mandate(mandate_id)
    assert client.mandates.get(mandate_id).status == "failed"
    assert fake.webhook_sink.actions()[-1] == "mandates.failed"
    with pytest.raises(errors.InvalidStateError):
        pay(client, mandate_id)


def test_errors_in_gocardless_shapes(fake, client):
    with pytest.raises(errors.AuthenticationError) as denied:
        gocardless_pro.Client(access_token="wrong", base_url=fake.url).mandates.get("MD123")
    assert denied.value.code == 401 and denied.value.errors[0]["reason"] == "access_token_not_found"
    with pytest.raises(errors.InvalidApiUsageError) as missing:
        client.payments.get("PM0000000999")
    assert missing.value.code == 404 and missing.value.errors[0]["reason"] == "resource_not_found"
    mandate_id = set_up_mandate(fake, client)
    with pytest.raises(errors.ValidationFailedError) as invalid:
        pay(client, mandate_id, amount=0, currency="GBP")
    assert {e["field"] for e in invalid.value.errors} == {"amount", "currency"}
    with pytest.raises(errors.ValidationFailedError):
        pay(client, mandate_id, charge_date="2000-01-03")  # before next_possible_charge_date
    assert "amount" in str(invalid.value)


def test_webhooks_are_signed_like_gocardless(fake, client):
    fake.auto_deliver = False
    mandate_id = set_up_mandate(fake, client, activate=False)
    fake.activate_mandate(mandate_id)
    assert fake.webhook_sink.events == [] and len(fake.pending) == 4
    deliveries = fake.deliver_pending()
    assert len(deliveries) == 4 and fake.pending == [] and all(d.status == 204 for d in deliveries)
    body, headers = fake.webhook_sink.bodies[0]
    payload = json.loads(body)
    assert set(payload) == {"events", "meta"} and payload["meta"]["webhook_id"].startswith("WB")
    assert headers["Webhook-Signature"] == fake.sign(body) and headers["Content-Type"] == "application/json"
    with pytest.raises(errors.InvalidSignatureError):
        webhooks.parse(body.replace(b"fulfilled", b"cancelled"), fake.webhook_secret, headers["Webhook-Signature"])
    with pytest.raises(errors.InvalidSignatureError):
        webhooks.parse(body, "another secret", headers["Webhook-Signature"])
    again = fake.deliver(fake.events[:2])  # re-delivery: same events, new webhook
    assert json.loads(again.body)["events"] == fake.events[:2]


def test_test_actions_over_http(fake, client):
    mandate_id = set_up_mandate(fake, client, activate=False)
    assert requests.post(f"{fake.url}/_test/activate_mandate/{mandate_id}").json() == {"ok": True, "result": None}
    assert client.mandates.get(mandate_id).status == "active"
    assert requests.post(f"{fake.url}/_test/activate_mandate/{mandate_id}").status_code == 409
    assert requests.post(f"{fake.url}/_test/pay_out/PM404").status_code == 404
