"""SEPA Direct Debit mandates: set up from the portal through a GoCardless Billing Request
Flow, followed by webhooks and on the debtor's return, cancelled from the portal."""
from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import case, select

from .. import gateways
from ..extensions import db
from ..gateways import GatewayError, MandateState
from ..models import MANDATE_RANK, MANDATE_USABLE, Debtor, Event, Mandate
from . import Conflict, NotFound, Unavailable, events


def current(debtor_id: int) -> Mandate | None:
    """The mandate the portal shows: the usable one, else the newest."""
    usable = case((Mandate.status.in_(MANDATE_USABLE), 0), else_=1)
    return db.session.scalar(select(Mandate).where(Mandate.debtor_id == debtor_id)
                             .order_by(usable, Mandate.id.desc()).limit(1))


def usable_mandate(debtor_id: int) -> Mandate | None:
    """The mandate direct debits go through: the newest one the provider accepts."""
    return db.session.scalar(select(Mandate).where(
        Mandate.debtor_id == debtor_id, Mandate.status.in_(MANDATE_USABLE))
        .order_by(Mandate.id.desc()).limit(1))


def start(debtor_id: int) -> str:
    """A Billing Request with a SEPA mandate request and its hosted flow; returns the flow's URL."""
    gw = gateways.direct_debit()
    if gw is None:
        raise NotFound("direct debit is not available")
    debtor = db.session.get(Debtor, debtor_id)
    if debtor is None:
        raise NotFound("no such debtor")
    if usable_mandate(debtor_id) is not None:
        raise Conflict("a Direct Debit mandate is already set up", "mandate")
    base = current_app.config["PORTAL_BASE_URL"]
    try:
        redirect = gw.start_mandate(debtor_key=f"{debtor.id}-{secrets.token_hex(8)}", name=debtor.name,
                                    email=debtor.email, language=debtor.language,
                                    redirect_uri=f"{base}/portal/mandate/return", exit_uri=f"{base}/portal/",
                                    metadata={"relance_debtor": str(debtor.id)})
    except GatewayError as e:
        current_app.logger.warning("mandate set-up failed: %s", e)
        raise Unavailable("Direct Debit set-up is unavailable at the moment; please try again later") from e
    db.session.add(Mandate(creditor_id=debtor.creditor_id, debtor_id=debtor.id, provider="gocardless",
                           billing_request_ref=redirect.ref, status="requested"))
    events.record("mandate.requested", creditor_id=debtor.creditor_id, debtor_id=debtor.id, actor="debtor",
                  billing_request=redirect.ref)
    db.session.commit()
    return redirect.url


def apply_state(state: MandateState) -> str:
    """Bring our mandate to the provider's state (forward only), in the caller's transaction."""
    mandate = db.session.scalar(select(Mandate).where(Mandate.mandate_ref == state.mandate_ref).with_for_update())
    if mandate is None and state.billing_request_ref:
        mandate = db.session.scalar(select(Mandate).where(Mandate.billing_request_ref == state.billing_request_ref)
                                    .with_for_update())
    if mandate is None:
        return "ignored"  # not ours, or its billing request not linked yet: that event will bring it
    mandate.mandate_ref = state.mandate_ref
    if state.bank_name:
        mandate.bank_name = state.bank_name[:100]
    if state.account_ending:
        mandate.account_ending = state.account_ending[-8:]
    if MANDATE_RANK.get(state.status, 0) > MANDATE_RANK.get(mandate.status, 0):
        mandate.status = state.status
        events.record(f"mandate.{state.status}", creditor_id=mandate.creditor_id, debtor_id=mandate.debtor_id,
                      actor="system", mandate=state.mandate_ref, bank_name=mandate.bank_name,
                      account_ending=mandate.account_ending)
        if state.status == "active":
            _collect_from_now_on(mandate.debtor_id)
    return "applied"


def _collect_from_now_on(debtor_id: int) -> None:
    """Once the mandate is active, the debtor's open invoices are collected through it on their
    due dates (CONTRACT §6) — unless the creditor has switched this debtor off, which stands."""
    debtor = db.session.get(Debtor, debtor_id, with_for_update=True)
    said = db.session.scalar(select(Event.id).where(Event.debtor_id == debtor_id, Event.type == "debtor.auto_collect",
                                                    Event.actor == "creditor").limit(1))
    if not debtor.auto_collect and said is None:
        debtor.auto_collect = True
        events.record("debtor.auto_collect", creditor_id=debtor.creditor_id, debtor_id=debtor.id, actor="system",
                      enabled=True, reason="mandate_active")


def refresh(debtor_id: int) -> Mandate | None:
    """The debtor is back from the hosted flow: ask GoCardless how it went instead of waiting
    for the webhook (both paths apply the same state, forward only)."""
    mandate = current(debtor_id)
    gw = gateways.direct_debit()
    if mandate is not None and gw is not None and mandate.status == "requested":
        try:
            state = gw.mandate_of_request(mandate.billing_request_ref)
            if state is not None:
                apply_state(state)
                db.session.commit()
        except GatewayError as e:
            current_app.logger.warning("mandate refresh failed: %s", e)
            db.session.rollback()
    return current(debtor_id)


def cancel(debtor_id: int) -> Mandate:
    gw = gateways.direct_debit()
    mandate = usable_mandate(debtor_id)
    if gw is None or mandate is None:
        raise NotFound("no Direct Debit mandate to cancel")
    try:
        state = gw.cancel_mandate(mandate.mandate_ref)
    except GatewayError as e:
        current_app.logger.warning("mandate cancel failed: %s", e)
        raise Unavailable("the mandate could not be cancelled just now; please try again later") from e
    apply_state(state)
    db.session.commit()
    return mandate


def set_auto_collect(debtor: Debtor, enabled: bool, actor: str = "creditor") -> None:
    """Collect this debtor's invoices through its mandate on each due date (or stop). The
    creditor's choice is recorded even when it changes nothing: it then outlasts a new mandate."""
    if debtor.auto_collect != enabled or actor == "creditor":
        debtor.auto_collect = enabled
        events.record("debtor.auto_collect", creditor_id=debtor.creditor_id, debtor_id=debtor.id, actor=actor,
                      enabled=enabled)
    db.session.commit()
