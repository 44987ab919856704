"""Provider webhooks: each event stored once in the webhook ledger (unique provider + event id)
and applied in the same transaction, from the object's state re-fetched from the provider."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..gateways import MandateState, Notification, PaymentState, ReversalState
from ..models import WebhookEvent
from . import mandates, payments


def receive(gateway, notifications: list[Notification]) -> dict[str, int]:
    """Apply each new event once; returns counts of applied, ignored and duplicate events.
    A GatewayError (provider unreachable while re-fetching) propagates: nothing is stored, so
    the provider's retry applies the event later."""
    counts = {"applied": 0, "ignored": 0, "duplicate": 0}
    for n in notifications:
        if _seen(n):
            counts["duplicate"] += 1
            continue
        state = gateway.resolve(n)
        outcome = _apply(n.provider, state)
        # Stored last, with its outcome, in the transaction that applied it: a concurrent delivery
        # of the same event waits on the rows it locked, then fails here and changes nothing.
        db.session.add(WebhookEvent(provider=n.provider, event_id=n.event_id[:255], type=n.type[:100],
                                    outcome=outcome, payload=n.raw))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            counts["duplicate"] += 1
            continue
        counts[outcome] += 1
    return counts


def _seen(n: Notification) -> bool:
    return db.session.scalar(select(WebhookEvent.id).where(WebhookEvent.provider == n.provider,
                                                           WebhookEvent.event_id == n.event_id[:255])) is not None


def _apply(provider: str, state) -> str:
    if isinstance(state, PaymentState):
        return payments.apply_payment_state(provider, state)
    if isinstance(state, ReversalState):
        return payments.apply_reversal_state(provider, state)
    if isinstance(state, MandateState):
        return mandates.apply_state(state)
    return "ignored"
