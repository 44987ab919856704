"""A Checkout Session, as a signed event carries it or as re-fetched, read as our PaymentState."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.gateways import Notification
from portal.gateways.stripe import StripeGateway, session_state

SESSION = {"id": "cs_1", "object": "checkout.session", "status": "complete", "payment_status": "paid",
           "amount_total": 12000, "currency": "eur", "payment_intent": "pi_1"}


@pytest.mark.parametrize("changes, event_type, status", [
    ({}, "checkout.session.completed", "succeeded"),
    ({"payment_status": "unpaid"}, "checkout.session.completed", "processing"),
    ({}, "checkout.session.async_payment_succeeded", "succeeded"),
    ({"payment_status": "unpaid"}, "checkout.session.async_payment_failed", "failed"),
    ({"status": "expired", "payment_status": "unpaid", "payment_intent": None}, "checkout.session.expired", "expired"),
    ({"status": "open", "payment_status": "unpaid", "payment_intent": None}, None, "created"),
])
def test_statuses(changes, event_type, status):
    state = session_state({**SESSION, **changes}, event_type)
    assert state.status == status and state.ref == "cs_1" and state.currency == "EUR"
    assert state.from_event is (event_type is not None)


def test_refetched_session_with_its_refund():
    pi = {"id": "pi_1", "status": "succeeded", "amount_received": 12000,
          "latest_charge": {"id": "ch_1", "amount_refunded": 5000}}
    state = session_state({**SESSION, "payment_intent": pi})
    assert (state.status, state.payment_ref, state.amount, state.from_event) == ("succeeded", "pi_1", 12000, False)
    assert [(r.kind, r.key, r.total) for r in state.reversals] == [("refund", "ch_1:refund", 5000)]
    failed = session_state({**SESSION, "payment_status": "unpaid",
                            "payment_intent": {**pi, "status": "requires_payment_method", "latest_charge": None}})
    assert failed.status == "failed" and failed.reversals == ()


junk = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(amount=junk, currency=junk, payment_intent=junk, status=junk)
def test_signed_but_ill_formed_sessions_are_ignored_or_read(amount, currency, payment_intent, status):
    """Signed is not well-formed: whatever the types, resolve answers a state or None, never raises."""
    gw = StripeGateway("sk_test_x", "whsec_x", "http://127.0.0.1:9")  # never called for checkout events
    obj = {**SESSION, "amount_total": amount, "currency": currency, "payment_intent": payment_intent, "status": status}
    state = gw.resolve(Notification("stripe", "evt_1", "checkout.session.completed",
                                    {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": obj}}))
    if state is not None:
        assert isinstance(state.amount, int) and state.amount == amount and state.currency == currency.upper()
