"""Payments started in the portal (card checkout, direct debit) or by automatic collection, and
what the providers say of them afterwards. Amounts always come from the ledger, never a form.

Applying a provider's state is idempotent and only moves forward: the attempt's status rank
never decreases, the ledger payment is unique per provider reference, and reversals are
unique per provider reference too (DESIGN: idempotency lives in the database).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from .. import gateways
from ..domain.calendar import today_in
from ..extensions import db
from ..gateways import CheckoutLine, GatewayError, PaymentState
from ..gateways.checkout import invoice_metadata
from ..models import (ATTEMPT_RANK, IN_FLIGHT_STATUSES, OPEN_STATUSES, Creditor, Debtor, Invoice, Payment,
                      PaymentAllocation, PaymentAttempt, PaymentAttemptLine, PaymentReversal, utcnow)
from . import Conflict, Invalid, NotFound, Unavailable, alerts, amounts_due, charge_items, events, ledger
from .checks import NUMBER, amount_of
from .mandates import usable_mandate

MAX_INVOICES = 100  # Stripe Checkout takes at most 100 line items
#: an attempt still without the provider's id after this long never reached the debtor (the
#: process stopped during the provider call, whose timeouts and retries take about a minute)
STALE_AFTER = timedelta(minutes=5)


class InFlight(Conflict):
    """Another attempt for one of these invoices is under way: the database refused a second
    (unique in-flight line per invoice). `attempt_id`: that attempt, when it is the debtor's."""
    code = "payment_in_flight"

    def __init__(self, attempt_id: int | None):
        super().__init__("a payment for this invoice is already under way", "invoice")
        self.attempt_id = attempt_id


@dataclass
class Selection:
    debtor: Debtor
    creditor: Creditor
    invoices: list[Invoice]
    amounts: list[int]

    @property
    def currency(self) -> str:
        return self.invoices[0].currency


def in_flight(debtor_id: int) -> set[int]:
    """Ids of this debtor's invoices with money on its way (not to be paid again, nor reminded)."""
    return set(db.session.scalars(
        select(PaymentAttemptLine.invoice_id).join(PaymentAttempt, PaymentAttempt.id == PaymentAttemptLine.attempt_id)
        .where(PaymentAttempt.debtor_id == debtor_id, PaymentAttempt.status == "processing")))


def select_invoices(debtor_id: int, numbers, partial_amount: str | None = None) -> Selection:
    """The debtor's open invoices among `numbers`, with what each is to be paid. Raises Invalid
    for an empty or impossible choice. Rows are locked: two tabs cannot pay the same twice."""
    if not isinstance(numbers, (list, tuple)) or not numbers:
        raise Invalid("choose at least one invoice to pay", "invoice")
    numbers = list(dict.fromkeys(n for n in numbers if isinstance(n, str) and NUMBER.fullmatch(n)))
    if len(numbers) > MAX_INVOICES:
        raise Invalid(f"at most {MAX_INVOICES} invoices can be paid at once", "invoice")
    row = db.session.execute(select(Debtor, Creditor).join(Creditor, Creditor.id == Debtor.creditor_id)
                             .where(Debtor.id == debtor_id)).first()
    if row is None:
        raise NotFound("no such debtor")
    debtor, creditor = row
    invoices = list(db.session.scalars(
        select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.number.in_(numbers),
                              Invoice.status.in_(OPEN_STATUSES))
        .order_by(charge_items.PRINCIPAL_FIRST, Invoice.due_date, Invoice.id).with_for_update()))
    busy = in_flight(debtor_id)
    invoices = [i for i in invoices if i.id not in busy]
    if not invoices:
        raise Invalid("none of these invoices can be paid now: already paid or a payment is on its way", "invoice")
    if len({i.currency for i in invoices}) > 1:
        raise Invalid("invoices in different currencies must be paid separately", "invoice")
    today = today_in(creditor.timezone)
    amounts = [amounts_due.due_today(i, today) for i in invoices]  # an early-payment discount deducted
    if partial_amount not in (None, ""):
        if len(invoices) != 1 or creditor.partial_payment_min is None:
            raise Invalid("only one invoice can be paid in part, where the creditor allows it", "amount")
        amount = amount_of(partial_amount, invoices[0].currency)
        floor = min(creditor.partial_payment_min, invoices[0].balance)
        if not floor <= amount <= invoices[0].balance:
            raise Invalid("the amount must be between the minimum and the balance", "amount")
        amounts = [amount]
    return Selection(debtor, creditor, invoices, amounts)


def _new_attempt(sel: Selection, provider: str, initiated_by: str) -> PaymentAttempt:
    """The attempt and its lines, in flight. Raises InFlight when another attempt holds one of the
    invoices: the partial unique index decides between concurrent requests, no lock is held
    across the provider's call (SQLite has one writer)."""
    debtor_id, invoice_ids = sel.debtor.id, [i.id for i in sel.invoices]
    attempt = PaymentAttempt(creditor_id=sel.creditor.id, debtor_id=debtor_id, provider=provider,
                             amount=sum(sel.amounts), currency=sel.currency, status="created",
                             initiated_by=initiated_by)
    db.session.add(attempt)
    try:
        db.session.flush()
        for invoice_id, amount in zip(invoice_ids, sel.amounts):
            db.session.add(PaymentAttemptLine(attempt_id=attempt.id, invoice_id=invoice_id, amount=amount))
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise InFlight(_attempt_in_flight(debtor_id, invoice_ids)) from None
    return attempt


def _attempt_in_flight(debtor_id: int, invoice_ids: list[int]) -> int | None:
    return db.session.scalar(
        select(PaymentAttempt.id).join(PaymentAttemptLine, PaymentAttemptLine.attempt_id == PaymentAttempt.id)
        .where(PaymentAttempt.debtor_id == debtor_id, PaymentAttemptLine.in_flight,
               PaymentAttemptLine.invoice_id.in_(invoice_ids)).order_by(PaymentAttempt.id.desc()).limit(1))


def _end_lines(attempt_id: int) -> None:
    """The attempt ended (failed, expired, succeeded): its invoices are free for another one.
    Never set back: an attempt that ended does not come back into flight."""
    db.session.connection().execute(_END_LINES, {"b_attempt_id": attempt_id})


def _record(type_: str, attempt: PaymentAttempt, actor: str, **data) -> None:
    lines = attempt.lines
    events.record(type_, creditor_id=attempt.creditor_id, debtor_id=attempt.debtor_id,
                  invoice_id=lines[0].invoice_id if len(lines) == 1 else None, actor=actor,
                  attempt=attempt.id, provider=attempt.provider, amount=attempt.amount, currency=attempt.currency,
                  invoices=[line.invoice.number for line in lines], **data)


def start_card_payment(debtor_id: int, numbers, partial_amount: str | None = None) -> tuple[PaymentAttempt, str]:
    """A Stripe Checkout Session for the chosen invoices; returns the attempt and where to send the debtor."""
    gw = gateways.card()
    if gw is None:
        raise NotFound("card payment is not available")
    _close_other_checkouts(debtor_id, numbers)
    sel = select_invoices(debtor_id, numbers, partial_amount)
    attempt = _new_attempt(sel, "stripe", "debtor")
    _record("payment.started", attempt, "debtor", method="card")
    db.session.commit()
    base = current_app.config["PORTAL_BASE_URL"]
    today = today_in(sel.creditor.timezone)
    lines = [CheckoutLine(amounts_due.label(inv, amount, sel.debtor.language, today), amount)
             for inv, amount in zip(sel.invoices, sel.amounts)]
    metadata = {"relance_attempt": str(attempt.id), "debtor_ref": sel.debtor.ref,
                **invoice_metadata([i.number for i in sel.invoices])}
    try:
        redirect = gw.start_payment(attempt_id=attempt.id, currency=sel.currency, lines=lines, email=sel.debtor.email,
                                    locale=sel.debtor.language,
                                    success_url=f"{base}/portal/payments/{attempt.id}?session_id={{CHECKOUT_SESSION_ID}}",
                                    cancel_url=f"{base}/portal/payments/{attempt.id}/cancel", metadata=metadata)
    except GatewayError as e:
        _fail(attempt, str(e))
        raise Unavailable("card payment is unavailable at the moment; please try again later") from e
    attempt.provider_ref = redirect.ref
    db.session.commit()
    return attempt, redirect.url


def _close_other_checkouts(debtor_id: int, numbers) -> None:
    """Checkouts still open for any of these invoices (another tab, an abandoned visit) are
    expired before a new attempt starts, by card or by direct debit, so the debtor cannot pay
    the same invoice twice; one that was paid meanwhile is recorded. An attempt that never got
    the provider's id and is stale ends as failed. Before the invoices are locked: the webhooks
    this sets off lock the attempt, then the invoice, and must not wait on us. Requests in the
    same instant are told apart by the database (_new_attempt): one starts, the others hear that
    a payment is under way."""
    numbers = [n for n in numbers if isinstance(n, str) and NUMBER.fullmatch(n)] \
        if isinstance(numbers, (list, tuple)) else []
    if not numbers:
        return  # select_invoices says what is wrong with the choice
    others = db.session.execute(
        select(PaymentAttempt.id, PaymentAttempt.provider_ref, PaymentAttempt.created_at)
        .join(PaymentAttemptLine, PaymentAttemptLine.attempt_id == PaymentAttempt.id)
        .join(Invoice, Invoice.id == PaymentAttemptLine.invoice_id)
        .where(PaymentAttempt.debtor_id == debtor_id, PaymentAttempt.provider == "stripe",
               PaymentAttempt.status == "created", Invoice.debtor_id == debtor_id, Invoice.number.in_(numbers))
    ).unique().all()
    db.session.commit()
    gw = gateways.card()
    for attempt_id, ref, created_at in others:
        if ref is None:
            if created_at < utcnow() - STALE_AFTER:
                stale = db.session.scalar(select(PaymentAttempt).where(
                    PaymentAttempt.id == attempt_id, PaymentAttempt.status == "created",
                    PaymentAttempt.provider_ref.is_(None)).with_for_update())
                if stale is not None:
                    _fail(stale, "no answer from the provider: abandoned")
            continue
        if gw is None:
            continue  # card payment switched off since: its checkout expires at Stripe by itself
        try:
            gw.cancel_payment(ref)
        except GatewayError:
            pass  # completed in the meantime (its state says how) or Stripe unreachable (raised below)
        try:
            apply_payment_state("stripe", gw.payment_state(ref))
        except GatewayError as e:
            raise Unavailable("card payment is unavailable at the moment; please try again later") from e
        db.session.commit()


def _fail(attempt: PaymentAttempt, error: str) -> None:
    attempt.status, attempt.last_error = "failed", error[:2000]
    _end_lines(attempt.id)
    _record("payment.failed", attempt, "system", error="provider_unavailable")
    db.session.commit()


def collect(debtor_id: int, numbers, initiated_by: str = "debtor") -> PaymentAttempt:
    """A direct debit through the debtor's mandate for the chosen invoices (in flight at once)."""
    gw = gateways.direct_debit()
    if gw is None:
        raise NotFound("direct debit is not available")
    if initiated_by == "debtor":
        # The debtor chose to pay by debit: a card checkout left open for these invoices ends
        # first. The daily collection leaves the debtor's checkout alone and tries again tomorrow.
        _close_other_checkouts(debtor_id, numbers)
    sel = select_invoices(debtor_id, numbers)
    mandate = usable_mandate(debtor_id)
    if mandate is None:
        raise Conflict("no active Direct Debit mandate: set one up first", "mandate")
    if sel.currency != "EUR":
        raise Invalid("SEPA Direct Debit collects euros only", "invoice")
    attempt = _new_attempt(sel, "gocardless", initiated_by)
    _record("payment.started", attempt, initiated_by, method="direct_debit")
    db.session.commit()
    numbers = ", ".join(i.number for i in sel.invoices)
    try:
        state = gw.collect(attempt_id=attempt.id, mandate_ref=mandate.mandate_ref, amount=attempt.amount,
                           currency=attempt.currency, description=f"{sel.creditor.name}: {numbers}",
                           metadata={"relance_attempt": str(attempt.id)})
    except GatewayError as e:
        _fail(attempt, str(e))
        raise Unavailable("the direct debit could not be requested; please try again later") from e
    attempt.provider_ref = state.ref
    db.session.commit()
    apply_payment_state("gocardless", state)
    db.session.commit()
    return attempt


def attempt_for(debtor_id: int, attempt_id: int) -> PaymentAttempt:
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.id == attempt_id,
                                                             PaymentAttempt.debtor_id == debtor_id))
    if attempt is None:
        raise NotFound("no such payment")
    return attempt


def cancel_checkout(debtor_id: int, attempt_id: int) -> PaymentAttempt:
    """The debtor came back from Checkout without paying: expire the session, so it cannot be
    paid later by surprise, and record what Stripe then says (paid after all, or expired)."""
    attempt = attempt_for(debtor_id, attempt_id)
    gw = gateways.card()
    if attempt.status == "created" and attempt.provider == "stripe" and attempt.provider_ref and gw is not None:
        try:
            gw.cancel_payment(attempt.provider_ref)
            apply_payment_state("stripe", gw.payment_state(attempt.provider_ref))
            db.session.commit()
        except GatewayError as e:
            current_app.logger.warning("could not expire checkout %s: %s", attempt.provider_ref, e)
    db.session.refresh(attempt)
    return attempt


def resume_url(debtor_id: int, attempt_id: int) -> str | None:
    """Where the debtor can finish this card payment: its Checkout page while it is open, else
    None. Reads only: what Stripe says of it is recorded by its webhook, or a cancel."""
    attempt = attempt_for(debtor_id, attempt_id)
    gw = gateways.card()
    if attempt.status != "created" or attempt.provider != "stripe" or not attempt.provider_ref or gw is None:
        return None
    ref = attempt.provider_ref
    db.session.commit()
    try:
        return gw.checkout_url(ref)
    except GatewayError as e:
        raise Unavailable("card payment is unavailable at the moment; please try again later") from e


# --- applying what a provider says -------------------------------------------------------------

def apply_payment_state(provider: str, state: PaymentState) -> str:
    """Bring our attempt (and the ledger) to the provider's current state, in the caller's
    transaction. Returns 'applied' or 'ignored' (not one of ours)."""
    conn = db.session.connection()
    db.session.flush()  # the attempt is read and may be written below the ORM
    row = conn.execute(_LOCK_ATTEMPT, {"provider": provider, "ref": state.ref}).first()
    if row is None:
        return "ignored"
    if state.status == "succeeded" and row.payment_id is None:
        # What nearly every webhook brings (a card payment confirmed), in statements built once;
        # success needs no event of its own (payment.received tells it).
        payment_id, created = ledger.record_payment(
            row.creditor_id, row.debtor_id, provider=provider, reference=state.payment_ref or state.ref,
            amount=state.amount, currency=state.currency, received_on=today_in(row.timezone),
            # an early-payment discount counts a direct debit from the day it was created
            discount_on=today_in(row.timezone, row.created_at) if provider == "gocardless" else None,
            invoice_ids=list(conn.execute(_ATTEMPT_INVOICES, {"attempt_id": row.id}).scalars()), actor="system",
            commit=False)
        conn.execute(_SUCCEEDED, {"attempt_id": row.id, "b_payment_id": payment_id})
        conn.execute(_END_LINES, {"b_attempt_id": row.id})
        if created:
            _tell_credit(row, payment_id, provider, state)
        ledger.expire_loaded(PaymentAttempt, [row.id])
        if not state.reversals:
            return "applied"
    attempt = db.session.get(PaymentAttempt, row.id)  # locked above
    before = attempt.status
    if state.status == "failed" and before == "succeeded" and attempt.payment_id is not None:
        # A direct debit that fails after it was confirmed ("late failure"): the money goes back.
        _reverse(db.session.get(Payment, attempt.payment_id, with_for_update=True),
                 "failed", f"{state.ref}:failed", attempt.amount)
    if ATTEMPT_RANK[state.status] > ATTEMPT_RANK[before]:
        attempt.status = state.status
        if state.status not in IN_FLIGHT_STATUSES:
            _end_lines(attempt.id)
        if state.status != "succeeded":  # payment.received already tells the success
            _record(f"payment.{state.status}", attempt, "system", provider_ref=state.ref)
        if state.status == "failed" and provider == "gocardless":  # the creditor was counting on it
            alerts.notify("failed", creditor_id=attempt.creditor_id, debtor_id=attempt.debtor_id,
                                 amount=attempt.amount, currency=attempt.currency, reference=state.ref,
                                 provider=provider, numbers=[line.invoice.number for line in attempt.lines])
    if attempt.payment_id is not None and state.reversals:
        payment = db.session.get(Payment, attempt.payment_id, with_for_update=True)
        for r in state.reversals:
            apply_reversal(payment, r)
    return "applied"


_ATT, _LINE = PaymentAttempt.__table__, PaymentAttemptLine.__table__
_LOCK_ATTEMPT = (select(_ATT.c.id, _ATT.c.status, _ATT.c.payment_id, _ATT.c.creditor_id, _ATT.c.debtor_id,
                        _ATT.c.created_at, Creditor.__table__.c.timezone)
                 .join(Creditor.__table__, Creditor.__table__.c.id == _ATT.c.creditor_id)
                 .where(_ATT.c.provider == bindparam("provider"), _ATT.c.provider_ref == bindparam("ref"))
                 .with_for_update(of=_ATT))
_ATTEMPT_INVOICES = select(_LINE.c.invoice_id).where(_LINE.c.attempt_id == bindparam("attempt_id")).order_by(_LINE.c.id)
_SUCCEEDED = (update(_ATT).where(_ATT.c.id == bindparam("attempt_id"))
              .values(status="succeeded", payment_id=bindparam("b_payment_id")))  # updated_at: its onupdate
_END_LINES = (update(_LINE).where(_LINE.c.attempt_id == bindparam("b_attempt_id"), _LINE.c.in_flight)
              .values(in_flight=False))
_ALLOC = PaymentAllocation.__table__
_ALLOCATED = select(func.coalesce(func.sum(_ALLOC.c.amount), 0)).where(_ALLOC.c.payment_id == bindparam("payment_id"))


def _tell_credit(row, payment_id: int, provider: str, state: PaymentState) -> None:
    """Money the attempt's invoices could not take (paid twice: a checkout completed after it was
    expired here, two attempts that both succeeded, a transfer meanwhile) stays as credit on the
    account; the creditor is told, and can refund it from the back office in one click."""
    credit = state.amount - int(db.session.connection().execute(_ALLOCATED, {"payment_id": payment_id}).scalar())
    if credit <= 0:
        return
    numbers = list(db.session.scalars(select(Invoice.number).join(PaymentAttemptLine, PaymentAttemptLine.invoice_id == Invoice.id)
                                      .where(PaymentAttemptLine.attempt_id == row.id).order_by(PaymentAttemptLine.id)))
    events.record("payment.overpaid", creditor_id=row.creditor_id, debtor_id=row.debtor_id, actor="system",
                  attempt=row.id, provider=provider, reference=state.payment_ref or state.ref, payment=payment_id,
                  amount=credit, currency=state.currency, invoices=numbers)
    alerts.notify("overpaid", creditor_id=row.creditor_id, debtor_id=row.debtor_id, amount=credit,
                  currency=state.currency, reference=state.payment_ref or state.ref, provider=provider, numbers=numbers)


def apply_reversal(payment: Payment, r) -> None:
    """Reverse what `r.total` says is taken back under `r.key`, less what already was."""
    # int(): SUM(bigint) is numeric on PostgreSQL (a Decimal), which must not reach event JSON
    done = int(db.session.scalar(select(func.coalesce(func.sum(PaymentReversal.amount), 0))
                             .where(PaymentReversal.payment_id == payment.id,
                                    PaymentReversal.reference.startswith(f"{r.key}:", autoescape=True)
                                    | (PaymentReversal.reference == r.key))))
    if r.total > done:
        _reverse(payment, r.kind, r.key if r.kind == "chargeback" else f"{r.key}:{r.total}", r.total - done)


def _reverse(payment: Payment, kind: str, reference: str, amount: int) -> None:
    reversal = ledger.reverse_payment(payment, amount, kind=kind, reference=reference)
    if reversal is not None:
        numbers = db.session.scalars(
            select(Invoice.number).join(PaymentAllocation, PaymentAllocation.invoice_id == Invoice.id)
            .where(PaymentAllocation.payment_id == payment.id)).all()
        alerts.notify(kind, creditor_id=payment.creditor_id, debtor_id=payment.debtor_id, amount=reversal.amount,
                             currency=payment.currency, reference=payment.reference, provider=payment.provider,
                             numbers=numbers)
