"""What goes back to the debtor, and the credit a payment left: reversals a provider reports on
their own, chargebacks won back, the back office's list of payments with the credit each left
(money received twice), and that credit's refund in one click."""
from __future__ import annotations

from sqlalchemy import func, select

from .. import gateways
from ..domain.calendar import today_in
from ..extensions import db
from ..gateways import GatewayError, Recovery, ReversalState
from ..models import Creditor, Debtor, Payment, PaymentAllocation, PaymentAttempt, PaymentReversal
from . import Conflict, NotFound, Unavailable, events, ledger, payments


def apply_reversal_state(provider: str, state: ReversalState) -> str:
    payment = db.session.scalar(select(Payment).where(Payment.provider == provider,
                                                      Payment.reference == state.payment_ref).with_for_update())
    if payment is None:
        # Not recorded yet (events out of order): the checkout's own state carries its refunds.
        return "ignored"
    payments.apply_reversal(payment, state.reversal)
    return "applied"


def apply_recovery(provider: str, r: Recovery) -> str:
    """A chargeback won back: the money comes in again as a payment of its own (reference
    '<dispute>:won', unique like any other), to the invoices the first payment had paid."""
    payment = db.session.scalar(select(Payment).where(Payment.provider == provider,
                                                      Payment.reference == r.payment_ref).with_for_update())
    taken = payment and db.session.scalar(select(PaymentReversal.amount).where(
        PaymentReversal.payment_id == payment.id, PaymentReversal.kind == "chargeback",
        PaymentReversal.reference == r.reversal_key))
    if not taken:
        return "ignored"  # never charged back here: nothing to give back
    invoice_ids = list(db.session.scalars(select(PaymentAllocation.invoice_id)
                                          .where(PaymentAllocation.payment_id == payment.id)
                                          .order_by(PaymentAllocation.id)))
    timezone = db.session.scalar(select(Creditor.timezone).where(Creditor.id == payment.creditor_id))
    ledger.record_payment(payment.creditor_id, payment.debtor_id, provider=provider, reference=f"{r.reversal_key}:won",
                          amount=min(r.amount, taken), currency=payment.currency, received_on=today_in(timezone),
                          invoice_ids=invoice_ids, actor="system", commit=False)
    return "applied"


def payment_credit(payment_id) -> int:
    """What of a payment no invoice took and nothing gave back: credit on the debtor's account."""
    allocated = (select(func.coalesce(func.sum(PaymentAllocation.amount - PaymentAllocation.reversed_amount), 0))
                 .where(PaymentAllocation.payment_id == payment_id).scalar_subquery())
    return Payment.amount - Payment.reversed_amount - allocated


def refund_credit(creditor_id: int, payment_id: int, user: str) -> int:
    """Give back, through the card provider, the credit a payment left on the account (money that
    came twice): the back office's one click. The refund is then recorded as Stripe reports it
    (the credit goes first, no invoice reopens). Returns the amount refunded."""
    row = db.session.execute(
        select(Payment, PaymentAttempt.provider_ref, payment_credit(Payment.id))
        .join(PaymentAttempt, PaymentAttempt.payment_id == Payment.id)
        .where(Payment.id == payment_id, Payment.creditor_id == creditor_id)).first()
    if row is None:
        raise NotFound("no such payment")
    payment, session_ref, credit = row
    gw = gateways.card()
    if payment.provider != "stripe" or gw is None:
        raise Conflict("only a card payment can be refunded from here", "payment")
    if credit <= 0:
        raise Conflict("this payment left no credit to refund", "payment")
    credit, reference, done = int(credit), payment.reference, payment.reversed_amount
    debtor_id, currency = payment.debtor_id, payment.currency
    db.session.commit()  # no row stays locked across the provider's call
    try:
        # The same click twice (same payment, same state) is one refund at Stripe.
        gw.refund(reference, credit, key=f"relance-refund-{payment_id}-{done}-{credit}")
        state = gw.payment_state(session_ref)
    except GatewayError as e:
        raise Unavailable("the refund could not be made just now; please try again later") from e
    events.record("payment.refund_requested", creditor_id=creditor_id, debtor_id=debtor_id, actor="creditor",
                  user=user, provider="stripe", reference=reference, amount=credit, currency=currency)
    payments.apply_payment_state("stripe", state)
    db.session.commit()
    return credit


def recent_attempts(creditor_id: int, debtor_id: int | None = None, limit: int = 100):
    """(attempt, debtor ref, reversed amount of its payment, its credit left) newest first, for
    the back office."""
    q = (select(PaymentAttempt, Debtor.ref, Payment.reversed_amount, payment_credit(Payment.id))
         .join(Debtor, Debtor.id == PaymentAttempt.debtor_id)
         .outerjoin(Payment, Payment.id == PaymentAttempt.payment_id)
         .where(PaymentAttempt.creditor_id == creditor_id).order_by(PaymentAttempt.id.desc()).limit(limit))
    if debtor_id is not None:
        q = q.where(PaymentAttempt.debtor_id == debtor_id)
    return db.session.execute(q).all()
