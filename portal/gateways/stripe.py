"""Card payments through Stripe Checkout (mode=payment), with the official SDK's StripeClient."""
from __future__ import annotations

import time
import urllib.parse

import requests
import stripe as sdk

from .results import (BadSignature, CheckoutLine, GatewayError, Notification, PaymentState, Recovery, Redirect,
                      Reversal, ReversalState, read_json)

TOLERANCE_SECONDS = 300
# Checkout events we act on; anything else is stored and ignored.
CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                   "checkout.session.async_payment_failed", "checkout.session.expired")


def signed_at(header: str) -> int:
    """The `t=` of a Stripe-Signature header the SDK has just verified, read as the SDK reads it."""
    return int(next(item.split("=", 2)[1] for item in header.split(",") if item.split("=", 2)[0] == "t"))


class StripeGateway:
    provider = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None):
        self.webhook_secret = webhook_secret
        self.client = sdk.StripeClient(secret_key, base_addresses={"api": api_base} if api_base else None,
                                       max_network_retries=2, http_client=_http_client(api_base or sdk.DEFAULT_API_BASE))

    @property
    def hosted_origins(self) -> list[str]:
        """Where the debtor's browser is sent (CSP form-action must allow it)."""
        base = self.client._requestor._options.base_addresses.get("api")
        return ["https://checkout.stripe.com"] if base in (None, sdk.DEFAULT_API_BASE) else [base]

    # --- starting a payment --------------------------------------------------------------------

    def start_payment(self, *, attempt_id: int, currency: str, lines: list[CheckoutLine], email: str | None,
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

    def checkout_url(self, session_id: str) -> str | None:
        """Where the debtor pays an open Checkout Session; None once it is complete or expired."""
        try:
            session = self.client.v1.checkout.sessions.retrieve(session_id)
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e
        return session.url if session.status == "open" else None

    def refund(self, payment_ref: str, amount: int, key: str) -> None:
        """Give back `amount` of what a PaymentIntent received; `key` makes a repeated click one refund."""
        try:
            self.client.v1.refunds.create(params={"payment_intent": payment_ref, "amount": amount},
                                          options={"idempotency_key": key})
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e

    # --- what an object is now -----------------------------------------------------------------

    def payment_state(self, session_id: str) -> PaymentState:
        try:
            # The JSON as Stripe sent it, read straight into a PaymentState: once per webhook, so
            # building the SDK's nested StripeObjects (and a dict back from them) is not worth it.
            s = self.client.raw_request("get", f"/v1/checkout/sessions/{urllib.parse.quote(session_id, safe='')}",
                                        expand=["payment_intent", "payment_intent.latest_charge"]).data
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e
        return session_state(s)

    def payment_state_of(self, payment_intent_id: str) -> PaymentState | None:
        """The state of the Checkout Session that made this PaymentIntent, re-fetched; None if none."""
        try:
            found = self.client.v1.checkout.sessions.list(params={
                "payment_intent": payment_intent_id, "limit": 1,
                "expand": ["data.payment_intent", "data.payment_intent.latest_charge"]})
        except sdk.StripeError as e:
            raise GatewayError(f"stripe: {e}") from e
        return session_state(found.data[0].to_dict()) if found.data else None

    # --- webhooks ------------------------------------------------------------------------------

    def parse(self, body: bytes, headers) -> list[Notification]:
        header = headers.get("Stripe-Signature")
        if not header:
            raise BadSignature("no Stripe-Signature header")
        try:
            sdk.WebhookSignature.verify_header(body.decode("utf-8"), header, self.webhook_secret, TOLERANCE_SECONDS)
        except (sdk.SignatureVerificationError, UnicodeDecodeError, ValueError) as e:
            raise BadSignature(str(e)) from None
        # The SDK refuses a timestamp older than the tolerance only: one dated ahead is refused too.
        if signed_at(header) > time.time() + TOLERANCE_SECONDS:
            raise BadSignature("timestamp in the future")
        try:
            event = read_json(body)
            ok = (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
                  and isinstance((event.get("data") or {}).get("object"), dict))
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise ValueError("not a Stripe event")
        return [Notification("stripe", event["id"], event["type"], event)]

    def resolve(self, n: Notification) -> PaymentState | ReversalState | Recovery | None:
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
                r = _refund(charge.to_dict())
                return ReversalState(charge.payment_intent, r) if r and charge.payment_intent else None
            if n.type in ("charge.dispute.created", "charge.dispute.closed"):
                dispute = self.client.v1.disputes.retrieve(oid)
                pi = dispute.payment_intent
                if not pi:
                    pi = self.client.v1.charges.retrieve(dispute.charge).payment_intent
                if not pi:
                    return None
                if dispute.status == "won":
                    # Stripe returned the disputed amount: a chargeback applied comes back (closed),
                    # one not applied yet never is (created, seen late).
                    return Recovery(pi, dispute.id, dispute.amount) if n.type == "charge.dispute.closed" else None
                if n.type == "charge.dispute.closed":
                    return None  # lost: the chargeback stands as applied
                return ReversalState(pi, Reversal("chargeback", dispute.id, dispute.amount))
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


def _http_client(api_base: str) -> sdk.RequestsClient:
    """requests looks up proxy settings in the environment on every request (a scan of
    os.environ each time): look them up once, for Stripe's address."""
    session = requests.Session()
    session.trust_env = False
    proxies = requests.utils.get_environ_proxies(api_base)
    return sdk.RequestsClient(timeout=20, session=session, proxy=proxies or None)


def session_state(s: dict) -> PaymentState:
    """A Checkout Session re-fetched with its PaymentIntent expanded (its latest charge too, when
    asked), as a PaymentState."""
    pi = s.get("payment_intent")
    pi = pi if isinstance(pi, dict) else None
    if s.get("status") == "expired":
        status = "expired"
    elif s.get("status") == "complete" and s.get("payment_status") == "paid":
        status = "succeeded"
    elif s.get("status") == "complete":
        # Completed but asynchronous (e.g. a bank debit): money in flight until the PI settles.
        failed = pi is not None and pi.get("status") in ("requires_payment_method", "canceled")
        status = "failed" if failed else "processing"
    else:
        status = "created"
    reversals = ()
    charge = pi.get("latest_charge") if pi is not None else None
    if isinstance(charge, dict):
        reversals = tuple(r for r in [_refund(charge)] if r)
    amount = (pi["amount_received"] if pi is not None and status == "succeeded" and pi.get("amount_received")
              else s.get("amount_total"))
    payment_ref = pi["id"] if pi is not None else s.get("payment_intent")
    return PaymentState(s["id"], status, payment_ref, int(amount or 0), str(s.get("currency") or "").upper(),
                        reversals)


def _refund(charge: dict) -> Reversal | None:
    total = charge.get("amount_refunded") or 0
    return Reversal("refund", f"{charge['id']}:refund", total) if total > 0 else None
