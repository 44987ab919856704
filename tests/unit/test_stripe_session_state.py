"""A Checkout Session re-fetched from Stripe (PaymentIntent expanded) read as our PaymentState."""
from __future__ import annotations

import pytest

from portal.gateways.stripe import session_state

PI = {"id": "pi_1", "status": "succeeded", "amount_received": 12000, "latest_charge": None}
SESSION = {"id": "cs_1", "object": "checkout.session", "status": "complete", "payment_status": "paid",
           "amount_total": 12000, "currency": "eur", "payment_intent": PI}


@pytest.mark.parametrize("changes, pi_changes, status", [
    ({}, {}, "succeeded"),
    ({"payment_status": "unpaid"}, {"status": "processing", "amount_received": 0}, "processing"),
    ({"payment_status": "unpaid"}, {"status": "requires_payment_method", "amount_received": 0}, "failed"),
    ({"payment_status": "unpaid"}, {"status": "canceled", "amount_received": 0}, "failed"),
    ({"status": "expired", "payment_status": "unpaid", "payment_intent": None}, None, "expired"),
    ({"status": "open", "payment_status": "unpaid", "payment_intent": None}, None, "created"),
])
def test_statuses(changes, pi_changes, status):
    session = {**SESSION, **changes}
    if pi_changes is not None:
        session["payment_intent"] = {**PI, **pi_changes}
    state = session_state(session)
    assert (state.status, state.ref, state.currency, state.amount) == (status, "cs_1", "EUR", 12000)
    assert state.payment_ref == (None if pi_changes is None else "pi_1")


def test_refunds_come_with_the_latest_charge():
    charged = lambda refunded: {**SESSION, "payment_intent": {**PI, "latest_charge": {"id": "ch_1", "amount_refunded": refunded}}}
    assert [(r.kind, r.key, r.total) for r in session_state(charged(5000)).reversals] == [("refund", "ch_1:refund", 5000)]
    assert session_state(charged(0)).reversals == ()
    assert session_state({**SESSION, "payment_intent": {**PI, "latest_charge": "ch_1"}}).reversals == ()  # not expanded
