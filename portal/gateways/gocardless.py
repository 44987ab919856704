"""SEPA Direct Debit through GoCardless Billing Requests and Billing Request Flows, with the
official SDK's Client."""
from __future__ import annotations

import hashlib
import hmac

import gocardless_pro as sdk
from gocardless_pro import errors

from .results import (BadSignature, GatewayError, MandateState, Notification, PaymentState, Redirect, Reversal,
                      read_json)

# GoCardless payment status -> ours. charged_back: the money came, then went back.
PAYMENT_STATUS = {"pending_customer_approval": "processing", "pending_submission": "processing",
                  "submitted": "processing", "confirmed": "succeeded", "paid_out": "succeeded",
                  "charged_back": "succeeded", "failed": "failed", "cancelled": "failed",
                  "customer_approval_denied": "failed"}
HOSTED = {"live": "https://pay.gocardless.com", "sandbox": "https://pay-sandbox.gocardless.com"}


class GoCardlessGateway:
    provider = "gocardless"

    def __init__(self, access_token: str, webhook_secret: str, environment: str, base_url: str | None):
        self.webhook_secret = webhook_secret
        self.base_url = base_url
        self.environment = environment
        self.client = (sdk.Client(access_token=access_token, base_url=base_url, timeout=20) if base_url
                       else sdk.Client(access_token=access_token, environment=environment, timeout=20))

    @property
    def hosted_origins(self) -> list[str]:
        return [self.base_url] if self.base_url else [HOSTED[self.environment]]

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except errors.GoCardlessProError as e:
            raise GatewayError(f"gocardless: {e}") from e
        except OSError as e:  # requests' connection errors are OSErrors
            raise GatewayError(f"gocardless: unreachable ({e})") from e

    # --- mandates ------------------------------------------------------------------------------

    def start_mandate(self, *, debtor_key: str, name: str, email: str | None, language: str,
                      redirect_uri: str, exit_uri: str, metadata: dict[str, str]) -> Redirect:
        br = self._call(self.client.billing_requests.create, params={
            "mandate_request": {"currency": "EUR", "scheme": "sepa_core"}, "metadata": metadata},
            headers={"Idempotency-Key": f"relance-mandate-{debtor_key}"})
        prefilled = {"company_name": name[:100]}
        if email:
            prefilled["email"] = email
        flow = self._call(self.client.billing_request_flows.create, params={
            "redirect_uri": redirect_uri, "exit_uri": exit_uri, "language": language,
            "prefilled_customer": prefilled, "links": {"billing_request": br.id}})
        return Redirect(br.id, flow.authorisation_url)

    def mandate_of_request(self, billing_request_ref: str) -> MandateState | None:
        br = self._call(self.client.billing_requests.get, billing_request_ref)
        mandate_ref = (br.attributes.get("links") or {}).get("mandate_request_mandate")
        return self.mandate_state(mandate_ref, billing_request_ref) if mandate_ref else None

    def mandate_state(self, mandate_ref: str, billing_request_ref: str | None = None) -> MandateState:
        m = self._call(self.client.mandates.get, mandate_ref)
        bank_name = ending = None
        account = (m.attributes.get("links") or {}).get("customer_bank_account")
        if account:
            ba = self._call(self.client.customer_bank_accounts.get, account)
            bank_name, ending = ba.attributes.get("bank_name"), ba.attributes.get("account_number_ending")
        return MandateState(m.id, m.status, billing_request_ref, bank_name, ending)

    def cancel_mandate(self, mandate_ref: str) -> MandateState:
        try:
            self.client.mandates.cancel(mandate_ref)
        except errors.InvalidStateError:
            pass  # already cancelled or failed: the state below says which
        except (errors.GoCardlessProError, OSError) as e:
            raise GatewayError(f"gocardless: {e}") from e
        return self.mandate_state(mandate_ref)

    # --- collecting ----------------------------------------------------------------------------

    def collect(self, *, attempt_id: int, mandate_ref: str, amount: int, currency: str, description: str,
                metadata: dict[str, str]) -> PaymentState:
        # The attempt id as idempotency key: the SDK turns a replay into a fetch of the first payment.
        p = self._call(self.client.payments.create, params={
            "amount": amount, "currency": currency, "description": description[:100],
            "metadata": metadata, "links": {"mandate": mandate_ref}},
            headers={"Idempotency-Key": f"relance-attempt-{attempt_id}"})
        return self._payment(p)

    def payment_state(self, payment_ref: str) -> PaymentState:
        return self._payment(self._call(self.client.payments.get, payment_ref))

    def _payment(self, p) -> PaymentState:
        status = PAYMENT_STATUS.get(p.status, "processing")
        reversals = (Reversal("chargeback", f"{p.id}:charged_back", p.amount),) if p.status == "charged_back" else ()
        return PaymentState(p.id, status, p.id, p.amount, p.currency, reversals)

    # --- webhooks ------------------------------------------------------------------------------

    def parse(self, body: bytes, headers) -> list[Notification]:
        signature = headers.get("Webhook-Signature")
        if not signature:
            raise BadSignature("no Webhook-Signature header")
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), digest.encode()):
            raise BadSignature("wrong Webhook-Signature")
        try:
            events = read_json(body)["events"]
            ok = isinstance(events, list) and all(
                isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("resource_type"), str)
                and isinstance(e.get("action"), str) and isinstance(e.get("links", {}), dict) for e in events)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError("not a GoCardless webhook")
        return [Notification("gocardless", e["id"], f"{e['resource_type']}.{e['action']}", e) for e in events]

    def resolve(self, n: Notification) -> PaymentState | MandateState | None:
        links = n.raw.get("links") or {}
        try:
            if n.raw["resource_type"] == "payments" and isinstance(links.get("payment"), str):
                return self.payment_state(links["payment"])
            if n.raw["resource_type"] == "mandates" and isinstance(links.get("mandate"), str):
                return self.mandate_state(links["mandate"])
            if n.raw["resource_type"] == "billing_requests" and isinstance(links.get("billing_request"), str):
                return self.mandate_of_request(links["billing_request"])
        except GatewayError as e:
            if isinstance(e.__cause__, errors.ApiError) and getattr(e.__cause__, "code", None) == 404:
                return None  # not an object of this account
            raise
        return None
