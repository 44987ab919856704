"""Provider webhooks: each event stored once in the webhook ledger (unique provider + event id)
and applied in the same transaction, from the object's state re-fetched from the provider."""
from __future__ import annotations

from sqlalchemy import bindparam, text, update

from ..extensions import db
from ..gateways import MandateState, Notification, PaymentState, Recovery, ReversalState
from ..models import WebhookEvent, utcnow
from . import mandates, payments, reversals


def receive(gateway, notifications: list[Notification]) -> dict[str, int]:
    """Apply each new event once; returns counts of applied, ignored and duplicate events.
    A GatewayError (provider unreachable while re-fetching) propagates: nothing is stored, so
    the provider's retry applies the event later."""
    counts = {"applied": 0, "ignored": 0, "duplicate": 0}
    for n in notifications:
        # Claimed first, applied in the same transaction: a concurrent delivery of the same event
        # waits on this uncommitted row, then finds it taken; a rollback frees it for a retry.
        event_id = _claim(n)
        if event_id is None:
            db.session.rollback()
            counts["duplicate"] += 1
            continue
        try:
            outcome = _apply(gateway, n.provider, gateway.resolve(n))
        except BaseException:
            db.session.rollback()
            raise
        if outcome != "applied":
            db.session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(outcome=outcome))
        db.session.commit()
        counts[outcome] += 1
    return counts


def claim(provider: str, event_id: str, type: str, payload: dict) -> int | None:
    """Store one event of a provider whose callbacks are not Notifications (Twilio's form posts),
    outcome 'applied' until said otherwise; None when it is already stored. The caller commits."""
    return _claim(Notification(provider, event_id, type, payload))


def set_outcome(event_id: int, outcome: str) -> None:
    db.session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(outcome=outcome))


def _claim(n: Notification) -> int | None:
    """Store the event (outcome 'applied' until said otherwise); None when it is already stored."""
    return db.session.connection().execute(_CLAIM, {
        "provider": n.provider, "event_id": n.event_id[:255], "type": n.type[:100], "received_at": utcnow(),
        "payload": n.raw}).scalar()


# Plain SQL that SQLite and PostgreSQL both take: SQLAlchemy caches its compiled form (the
# dialects' own insert().on_conflict_do_nothing() would be compiled again for every event).
_COLUMNS = WebhookEvent.__table__.c
_CLAIM = text("INSERT INTO webhook_event (provider, event_id, type, received_at, outcome, payload) "
              "VALUES (:provider, :event_id, :type, :received_at, 'applied', :payload) "
              "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id").bindparams(
    bindparam("received_at", type_=_COLUMNS.received_at.type), bindparam("payload", type_=_COLUMNS.payload.type))


def _apply(gateway, provider: str, state) -> str:
    if isinstance(state, PaymentState):
        return payments.apply_payment_state(provider, state)
    if isinstance(state, ReversalState):
        outcome = reversals.apply_reversal_state(provider, state)
        late = getattr(gateway, "payment_state_of", None)
        if outcome == "ignored" and late is not None:
            # A refund or chargeback of a payment not recorded yet (its own event is late or was
            # lost): record the payment from the provider's current state, then take this back.
            paid = late(state.payment_ref)
            if paid is not None and payments.apply_payment_state(provider, paid) == "applied":
                outcome = reversals.apply_reversal_state(provider, state)
        return outcome
    if isinstance(state, Recovery):
        return reversals.apply_recovery(provider, state)
    if isinstance(state, MandateState):
        return mandates.apply_state(state)
    return "ignored"
