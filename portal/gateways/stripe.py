"""Card payments through Stripe Checkout (mode=payment), with the official SDK's StripeClient."""
from __future__ import annotations

import json

import stripe as sdk

from . import BadSignature, GatewayError, Line, Notification, PaymentState, Redirect, Reversal, ReversalState

TOLERANCE_SECONDS = 300
METADATA_VALUE_MAX = 500  # Stripe's limit per metadata value
# Checkout events we act on; anything else is stored and ignored.
CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                   "checkout.session.async_payment_failed", "checkout.session.expired")
CHARGE_EVENTS = ("charge.refunded", "charge.dispute.created")


def invoice_metadata(numbers: list[str]) -> dict[str, str]:
    """Invoice numbers in metadata values of at most 500 characters: invoices, invoices_2, ..."""
    chunks, current = [], ""
    for n in numbers:
        candidate = f"{current},{n}" if current else n
        if len(candidate) > METADATA_VALUE_MAX:
            chunks.append(current)
            candidate = n
        current = candidate
    chunks.append(current)
    return {("invoices" if i == 0 else f"invoices_{i + 1}"): c for i, c in enumerate(chunks)}


class StripeGateway:
    provider = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None):
        self.webhook_secret = webhook_secret
        self.client = sdk.StripeClient(secret_key, base_addresses={"api": api_base} if api_base else None,
                                       max_network_retries=2, http_client=sdk.RequestsClient(timeout=20))

    @property
    def hosted_origins(self) -> list[str]:
        """Where the debtor's browser is sent (CSP form-action must allow it)."""
        base = self.client._requestor._options.base_addresses.get("api")
        return ["https://checkout.stripe.com"] if base in (None, sdk.DEFAULT_API_BASE) else [base]

    # --- starting a payment --------------------------------------------------------------------

    def start_payment(self, *, attempt_id: int, currency: str, lines: list[Line], email: str | None,
                      locale: str, success_url: str, cancel_url: str, metadata: dict[str, str]) -> Redirect:
        params = {
            "mode": "payment",
            "line_items": [{"price_data": {"currency": currency.lower(), "unit_amount": line.amount,
                                           "product_data": {"name": line.label}}, "quantity": 1}
                           for line in lines],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "client_reference_id": f"attempt-{attempt_id}",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "locale": locale,
        }
        if email:
            params["customer_email"] = email
        try:
            # The attempt id as idempotency key: a retried request never opens a second checkout.
            session = self.client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": f"relance-attempt-{attempt_id}"})
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e.user_message or e}") from e
        return Redirect(session.id, session.url)

    def cancel_payment(self, session_id: str) -> None:
        """Expire an open Checkout Session so that it can no longer be paid."""
        try:
            self.client.v1.checkout.sessions.expire(session_id)
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e

    # --- what an object is now -----------------------------------------------------------------

    def payment_state(self, session_id: str) -> PaymentState:
        try:
            s = self.client.v1.checkout.sessions.retrieve(
                session_id, params={"expand": ["payment_intent", "payment_intent.latest_charge"]})
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e
        pi = s.payment_intent if not isinstance(s.payment_intent, str) else None
        if s.status == "expired":
            status = "expired"
        elif s.status == "complete" and s.payment_status == "paid":
            status = "succeeded"
        elif s.status == "complete":
            # Completed but asynchronous (e.g. a bank debit): money in flight until the PI settles.
            status = "failed" if pi is not None and pi.status in ("requires_payment_method", "canceled") else "processing"
        else:
            status = "created"
        reversals = ()
        charge = getattr(pi, "latest_charge", None) if pi is not None else None
        if charge is not None and not isinstance(charge, str):
            reversals = tuple(r for r in [_refund(charge)] if r)
        amount = (pi.amount_received if pi is not None and status == "succeeded" and pi.amount_received
                  else s.amount_total)
        return PaymentState(s.id, status, pi.id if pi is not None else s.payment_intent, amount,
                            s.currency.upper(), reversals)

    # --- webhooks ------------------------------------------------------------------------------

    def parse(self, body: bytes, headers) -> list[Notification]:
        header = headers.get("Stripe-Signature")
        if not header:
            raise BadSignature("no Stripe-Signature header")
        try:
            sdk.WebhookSignature.verify_header(body.decode("utf-8"), header, self.webhook_secret, TOLERANCE_SECONDS)
        except (sdk.SignatureVerificationError, UnicodeDecodeError, ValueError) as e:
            raise BadSignature(str(e)) from None
        try:
            event = json.loads(body)
            ok = (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
                  and isinstance((event.get("data") or {}).get("object"), dict))
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise ValueError("not a Stripe event")
        return [Notification("stripe", event["id"], event["type"], event)]

    def resolve(self, n: Notification) -> PaymentState | ReversalState | None:
        """The current state of what the event is about, re-fetched; None when we do not act on it."""
        obj = n.raw["data"]["object"]
        oid = obj.get("id")
        if not isinstance(oid, str):
            return None
        try:
            if n.type in CHECKOUT_EVENTS:
                return self.payment_state(oid)
            if n.type == "charge.refunded":
                charge = self.client.v1.charges.retrieve(oid)
                r = _refund(charge)
                return ReversalState(charge.payment_intent, r) if r and charge.payment_intent else None
            if n.type == "charge.dispute.created":
                dispute = self.client.v1.disputes.retrieve(oid)
                pi = dispute.payment_intent
                if not pi:
                    pi = self.client.v1.charges.retrieve(dispute.charge).payment_intent
                return ReversalState(pi, Reversal("chargeback", dispute.id, dispute.amount)) if pi else None
        except sdk.InvalidRequestError as e:
            if e.http_status == 404:
                return None  # not an object of this account: nothing to apply
            raise GatewayError(f"stripe: {e}") from e
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e
        except GatewayError as e:  # payment_state wraps the SDK's error: an unknown session is not ours either
            if isinstance(e.__cause__, sdk.InvalidRequestError) and e.__cause__.http_status == 404:
                return None
            raise
        return None


def _refund(charge) -> Reversal | None:
    total = charge.amount_refunded or 0
    return Reversal("refund", f"{charge.id}:refund", total) if total > 0 else None
