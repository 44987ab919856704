"""A fake GoCardless Pro API for the real `gocardless-pro` SDK (`Client(base_url=fake.url)`).

It keeps billing requests, flows, customers, bank accounts, mandates and payments in memory,
answers in GoCardless's enveloped JSON shapes (errors included, so the SDK raises its own
exception classes and resolves idempotent-creation conflicts itself), serves a stand-in for the
hosted Billing Request Flow page, and has test actions that move mandates and payments through
their lifecycle and deliver webhooks signed as GoCardless signs them (hex HMAC-SHA256 of the raw
body in `Webhook-Signature`).

When events are delivered: events caused by a test action or by the payer's hosted form go out at
once (auto_deliver=True). Events caused by the app's own API calls (payments.created, cancels)
are never delivered while the app is still waiting for that call's answer - GoCardless sends them
later, and delivering them mid-call could deadlock an app holding a database lock. They wait in
`pending` and go out before the next action's webhook, or with `deliver_pending()`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import itertools
import json
import re
import uuid

from fakes.provider_http import Delivery, ProviderServer, Reply, Request, redirect

CREDITOR_ID = "CR0000000001"
INACTIVE_MANDATE = {"cancelled", "failed", "expired", "consumed", "blocked"}
CUSTOMER_FIELDS = {"given_name", "family_name", "email", "company_name", "address_line1",
                   "address_line2", "city", "postal_code", "region", "country_code", "phone_number", "language"}
DOCS = "https://developer.gocardless.com/api-reference#"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _timestamp() -> str:  # GoCardless: ISO 8601 UTC with milliseconds and "Z"
    now = _now()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _snapshot(obj: dict) -> dict:
    # Replies are encoded after the lock is released, so they carry a copy, not live state.
    return json.loads(json.dumps(obj))


def _error(status: int, type_: str, message: str, errors: list[dict]) -> Reply:
    return Reply(status, {"error": {
        "message": message, "type": type_, "code": status, "errors": errors,
        "documentation_url": DOCS + (errors[0].get("reason") or type_ if errors else type_),
        "request_id": str(uuid.uuid4())}})


def _invalid_field(field: str, message: str, resource: str) -> dict:
    # request_pointer is required: the SDK's ValidationFailedError.__str__ formats it.
    return {"field": field, "message": message,
            "request_pointer": f"/{resource}/{field.replace('.', '/')}"}


def _validation_failed(errors: list[dict]) -> Reply:
    return _error(422, "validation_failed", "Validation failed", errors)


def _invalid(resource: str, field: str, message: str) -> Reply:
    return _validation_failed([_invalid_field(field, message, resource)])


def _not_found() -> Reply:
    return _error(404, "invalid_api_usage", "Resource not found",
                  [{"reason": "resource_not_found", "message": "Resource not found"}])


class TransitionError(ValueError):
    """A test action asked for a move the object's status does not allow."""


class FakeGoCardless(ProviderServer):
    def __init__(self, access_token="gc_sandbox_fake", webhook_secret="gc_whsec_fake",
                 auto_deliver=True):
        super().__init__()
        self.access_token = access_token
        self.webhook_secret = webhook_secret
        self.auto_deliver = auto_deliver
        self.billing_requests: dict[str, dict] = {}
        self.billing_request_flows: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.customer_bank_accounts: dict[str, dict] = {}
        self.mandates: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.events: list[dict] = []
        self.pending: list[dict] = []
        self._ids = itertools.count(1)
        self._idempotency: dict[tuple[str, str], str] = {}  # (collection, key) -> resource id
        api = [
            ("POST", "/billing_requests", self._create_billing_request),
            ("GET", "/billing_requests/{id}", self._getter("billing_requests")),
            ("POST", "/billing_request_flows", self._create_flow),
            ("GET", "/customers/{id}", self._getter("customers")),
            ("GET", "/customer_bank_accounts/{id}", self._getter("customer_bank_accounts")),
            ("GET", "/mandates/{id}", self._getter("mandates")),
            ("POST", "/mandates/{id}/actions/cancel", self._cancel_mandate),
            ("POST", "/payments", self._create_payment),
            ("GET", "/payments/{id}", self._getter("payments")),
            ("POST", "/payments/{id}/actions/cancel", self._cancel_payment),
            ("GET", "/events/{id}", self._get_event),
        ]
        for method, pattern, handler in api:
            self.route(method, pattern, self._authenticated(handler))
        self.route("GET", "/flow/{id}", self._flow_page)
        self.route("POST", "/flow/{id}", self._flow_submit)
        self.route("POST", "/_test/{action}/{id}", self._test_action)

    # --- plumbing ------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def not_found(self, path: str) -> Reply:  # a typed error, or the SDK retries "malformed" replies
        return _not_found()

    def _authenticated(self, handler):
        def wrapped(req: Request) -> Reply:
            if req.headers.get("authorization") != f"Bearer {self.access_token}":
                return _error(401, "invalid_api_usage", "Access token not found", [
                    {"reason": "access_token_not_found", "message": "Access token not found"}])
            try:
                req.json()
            except ValueError:
                return _error(400, "invalid_api_usage", "Invalid document structure", [
                    {"reason": "invalid_document_structure", "message": "Invalid document structure"}])
            try:
                return handler(req)
            except Exception as exc:  # answer, rather than drop the connection (the SDK would retry)
                return _error(500, "gocardless", f"Fake GoCardless failed: {exc!r}", [])
        return wrapped

    def _getter(self, collection: str):
        def get(req: Request) -> Reply:
            with self.lock:
                obj = getattr(self, collection).get(req.params["id"])
                return Reply(200, {collection: _snapshot(obj)}) if obj else _not_found()
        return get

    def _get_event(self, req: Request) -> Reply:
        with self.lock:
            event = next((e for e in self.events if e["id"] == req.params["id"]), None)
        return Reply(200, {"events": event}) if event else _not_found()

    def _create(self, req: Request, collection: str, build) -> Reply:
        """Idempotent creation: a repeated Idempotency-Key is a 409 naming the first resource,
        which the SDK turns into a GET of that resource."""
        data = req.json()
        body = data.get(collection) if isinstance(data, dict) else None
        if not isinstance(body, dict):
            return _error(400, "invalid_api_usage", "Invalid document structure", [
                {"reason": "invalid_document_structure",
                 "message": f"Request body must be enveloped in '{collection}'"}])
        key = req.headers.get("idempotency-key")
        events: list[dict] = []
        with self.lock:
            if key and (collection, key) in self._idempotency:
                message = "A resource has already been created with this idempotency key"
                return _error(409, "invalid_state", message, [
                    {"reason": "idempotent_creation_conflict", "message": message,
                     "links": {"conflicting_resource_id": self._idempotency[(collection, key)]}}])
            reply = build(body, events)
            if key and reply.status == 201:
                self._idempotency[(collection, key)] = reply.body[collection]["id"]
        self._send(events, from_api=True)
        return reply

    def _event(self, resource_type: str, action: str, links: dict, resource: dict,
               origin: str, cause: str, description: str, **extra) -> dict:
        event = {"id": self._new_id("EV"), "created_at": _timestamp(), "action": action,
                 "resource_type": resource_type, "links": links,
                 "details": {"origin": origin, "cause": cause, "description": description,
                             "scheme": "sepa_core", **extra},
                 "metadata": {}, "resource_metadata": dict(resource.get("metadata") or {})}
        self.events.append(event)
        return event

    def _send(self, events: list[dict], from_api: bool = False) -> None:
        # Called with self.lock released: the app's handler calls back into this fake.
        if not events:
            return
        if from_api or not self.auto_deliver:
            with self.lock:
                self.pending.extend(events)
            return
        self.deliver_pending()  # anything older first, so the app sees events in order
        self.deliver(events)

    # --- webhooks ------------------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        return hmac.new((secret or self.webhook_secret).encode(), body, hashlib.sha256).hexdigest()

    def deliver(self, events: list[dict]) -> Delivery:
        body = json.dumps({"events": events, "meta": {"webhook_id": self._new_id("WB")}}).encode()
        return self.post_webhook(body, {"Webhook-Signature": self.sign(body),
                                        "User-Agent": "gocardless-webhook-service/1.1"})

    def deliver_pending(self) -> list[Delivery]:
        with self.lock:
            events, self.pending = self.pending, []
        return [self.deliver([event]) for event in events]

    # --- API: billing requests and flows -------------------------------------------------

    def _create_billing_request(self, req: Request) -> Reply:
        return self._create(req, "billing_requests", self._build_billing_request)

    def _build_billing_request(self, body: dict, events: list) -> Reply:
        mr = body.get("mandate_request")
        if not isinstance(mr, dict):
            return _invalid("billing_requests", "mandate_request", "is required by this fake")
        if mr.get("currency") != "EUR" or mr.get("scheme", "sepa_core") != "sepa_core":
            return _invalid("billing_requests", "mandate_request.currency", "must be EUR (sepa_core)")
        links = dict(body.get("links") or {})
        customer_id = links.get("customer")
        if customer_id is None:  # GoCardless creates an empty customer up front
            customer_id = self._new_id("CU")
            self.customers[customer_id] = {
                "id": customer_id, "created_at": _timestamp(), "email": None, "given_name": None,
                "family_name": None, "company_name": None, "country_code": None,
                "language": "en", "metadata": {}}
        elif customer_id not in self.customers:
            return _invalid("billing_requests", "links.customer", "doesn't exist")
        brq = {"id": self._new_id("BRQ"), "created_at": _timestamp(), "status": "pending",
               "mandate_request": {"currency": "EUR", "scheme": "sepa_core", "links": {},
                                   "metadata": dict(mr.get("metadata") or {})},
               "payment_request": None, "metadata": dict(body.get("metadata") or {}),
               "links": {"customer": customer_id, "customer_billing_detail": self._new_id("CBD"),
                         "creditor": CREDITOR_ID},
               "actions": [{"type": t, "required": True, "status": "pending",
                            "completes_actions": [], "requires_actions": []}
                           for t in ("collect_customer_details", "collect_bank_account", "confirm_payer_details")]}
        self.billing_requests[brq["id"]] = brq
        return Reply(201, {"billing_requests": _snapshot(brq)})

    def _create_flow(self, req: Request) -> Reply:
        return self._create(req, "billing_request_flows", self._build_flow)

    def _build_flow(self, body: dict, events: list) -> Reply:
        brq_id = (body.get("links") or {}).get("billing_request")
        if brq_id not in self.billing_requests:
            return _invalid("billing_request_flows", "links.billing_request", "doesn't exist")
        flow_id = self._new_id("BRF")
        flow = {"id": flow_id, "created_at": _timestamp(),
                "authorisation_url": f"{self.url}/flow/{flow_id}",
                "redirect_uri": body.get("redirect_uri"), "exit_uri": body.get("exit_uri"),
                "expires_at": (_now() + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "lock_customer_details": bool(body.get("lock_customer_details", False)),
                "lock_bank_account": bool(body.get("lock_bank_account", False)),
                "prefilled_customer": dict(body.get("prefilled_customer") or {}),
                "links": {"billing_request": brq_id}}
        self.billing_request_flows[flow_id] = flow
        return Reply(201, {"billing_request_flows": _snapshot(flow)})

    # --- API: mandates and payments ------------------------------------------------------

    def _cancel_mandate(self, req: Request) -> Reply:
        events: list[dict] = []
        with self.lock:
            mandate = self.mandates.get(req.params["id"])
            if mandate is None:
                return _not_found()
            if mandate["status"] in INACTIVE_MANDATE:
                return _error(422, "invalid_state", "Mandate cannot be cancelled", [
                    {"reason": "cancellation_failed", "message": f"Mandate is {mandate['status']}"}])
            mandate["status"] = "cancelled"
            events.append(self._event("mandates", "cancelled", {"mandate": mandate["id"]}, mandate,
                                      "api", "mandate_cancelled", "The mandate was cancelled at your request."))
            # GoCardless cancels the mandate's payments not yet submitted along with it.
            for pm in self.payments.values():
                if pm["links"]["mandate"] == mandate["id"] and pm["status"] == "pending_submission":
                    pm["status"] = "cancelled"
                    events.append(self._event("payments", "cancelled", {"payment": pm["id"]}, pm, "api",
                                              "mandate_cancelled", "The mandate for this payment was cancelled."))
            reply = Reply(200, {"mandates": _snapshot(mandate)})
        self._send(events, from_api=True)
        return reply

    def _create_payment(self, req: Request) -> Reply:
        return self._create(req, "payments", self._build_payment)

    def _build_payment(self, body: dict, events: list) -> Reply:
        invalid = []
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            invalid.append(_invalid_field("amount", "must be a positive integer", "payments"))
        if body.get("currency") != "EUR":
            invalid.append(_invalid_field("currency", "must be EUR for a sepa_core mandate", "payments"))
        metadata = body.get("metadata") or {}
        if len(metadata) > 3 or any(not isinstance(v, str) or len(v) > 500 or len(k) > 50
                                    for k, v in metadata.items()):
            invalid.append(_invalid_field("metadata", "up to 3 keys of 50 characters, string values of up to 500",
                                          "payments"))
        mandate = self.mandates.get((body.get("links") or {}).get("mandate"))
        if mandate is None:
            invalid.append(_invalid_field("links.mandate", "doesn't exist", "payments"))
        if invalid:
            return _validation_failed(invalid)
        if mandate["status"] in INACTIVE_MANDATE:
            return _error(422, "invalid_state", "Mandate is inactive", [
                {"reason": "mandate_is_inactive",
                 "message": f"The mandate is {mandate['status']} and cannot be charged"}])
        charge_date = body.get("charge_date") or mandate["next_possible_charge_date"]
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", str(charge_date)):
            return _invalid("payments", "charge_date", "must be a date (YYYY-MM-DD)")
        if charge_date < mandate["next_possible_charge_date"]:  # ISO dates compare as strings
            return _invalid("payments", "charge_date", "must be on or after mandate's next_possible_charge_date")
        pm = {"id": self._new_id("PM"), "created_at": _timestamp(), "charge_date": charge_date,
              "amount": amount, "amount_refunded": 0, "currency": "EUR",
              "description": body.get("description"), "reference": body.get("reference"),
              "metadata": dict(metadata), "status": "pending_submission", "scheme": "sepa_core",
              "retry_if_possible": bool(body.get("retry_if_possible", False)),
              "links": {"mandate": mandate["id"], "creditor": CREDITOR_ID}}
        self.payments[pm["id"]] = pm
        events.append(self._event("payments", "created", {"payment": pm["id"]}, pm, "api",
                                  "payment_created", "Payment created via the API."))
        return Reply(201, {"payments": _snapshot(pm)})

    def _cancel_payment(self, req: Request) -> Reply:
        events: list[dict] = []
        with self.lock:
            pm = self.payments.get(req.params["id"])
            if pm is None:
                return _not_found()
            if pm["status"] != "pending_submission":
                return _error(422, "invalid_state", "Payment cannot be cancelled", [
                    {"reason": "cancellation_failed", "message": f"Payment is {pm['status']}"}])
            pm["status"] = "cancelled"
            events.append(self._event("payments", "cancelled", {"payment": pm["id"]}, pm, "api",
                                      "payment_cancelled", "The payment was cancelled at your request."))
            reply = Reply(200, {"payments": _snapshot(pm)})
        self._send(events, from_api=True)
        return reply

    # --- hosted Billing Request Flow stand-in --------------------------------------------

    def _flow_page(self, req: Request, error: str | None = None, form: dict | None = None) -> Reply:
        with self.lock:
            flow = self.billing_request_flows.get(req.params["id"])
            if flow is None:
                return Reply(404, self._page("Not found", "<p>This link is not valid.</p>"))
            if self.billing_requests[flow["links"]["billing_request"]]["status"] != "pending":
                return Reply(400, self._page("Already completed",
                                             "<p>This Direct Debit has already been set up.</p>"))
            pc = flow["prefilled_customer"]
        name = (form or {}).get("account_holder_name") or " ".join(
            p for p in (pc.get("given_name"), pc.get("family_name")) if p) or pc.get("company_name") or ""
        iban = (form or {}).get("iban") or "DE89370400440532013000"
        e = html.escape
        alert = f'<p role="alert">{e(error)}</p>' if error else ""
        cancel = f'<p><a href="{e(flow["exit_uri"])}">Cancel</a></p>' if flow["exit_uri"] else ""
        body = f"""{alert}<form method="post">
<p><label for="account_holder_name">Account holder name</label>
<input id="account_holder_name" name="account_holder_name" autocomplete="name" required value="{e(name)}"></p>
<p><label for="iban">IBAN</label>
<input id="iban" name="iban" required value="{e(iban)}"></p>
<p><button type="submit">Set up Direct Debit</button></p>
</form>{cancel}"""
        return Reply(422 if error else 200, self._page("Set up a Direct Debit", body))

    @staticmethod
    def _page(title: str, body: str) -> str:
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                f'</head><body><main><h1>{title}</h1>{body}</main></body></html>')

    def _flow_submit(self, req: Request) -> Reply:
        form = {k: v[0] for k, v in req.form().items()}
        try:
            redirect_uri = self.authorise(req.params["id"], form.get("iban", ""),
                                          form.get("account_holder_name", ""))
        except KeyError:
            return Reply(404, self._page("Not found", "<p>This link is not valid.</p>"))
        except TransitionError:
            return self._flow_page(req)  # already fulfilled: the 400 page
        except ValueError as exc:
            return self._flow_page(req, error=str(exc), form=form)
        if redirect_uri:
            return redirect(redirect_uri)
        return Reply(200, self._page("Direct Debit set up", "<p>You can close this page.</p>"))

    # --- test actions --------------------------------------------------------------------

    def authorise(self, flow_id, iban="DE89370400440532013000", account_holder_name="Jane Doe") -> str:
        iban = "".join(iban.split()).upper()
        if len(iban) < 15 or not iban[:2].isalpha() or not iban[2:].isalnum():
            raise ValueError("Enter a valid IBAN")
        if not account_holder_name.strip():
            raise ValueError("Enter the account holder name")
        with self.lock:
            flow = self.billing_request_flows[flow_id]
            brq = self.billing_requests[flow["links"]["billing_request"]]
            if brq["status"] != "pending":
                raise TransitionError(f"billing request {brq['id']} is {brq['status']}")
            customer = self.customers[brq["links"]["customer"]]
            # Details the payer confirmed on the form; without a name, the account holder's.
            customer.update({k: v for k, v in flow["prefilled_customer"].items() if k in CUSTOMER_FIELDS})
            if not (customer.get("given_name") or customer.get("company_name")):
                given, _, family = account_holder_name.strip().partition(" ")
                customer.update(given_name=given, family_name=family or None)
            customer["country_code"] = customer.get("country_code") or iban[:2]
            bank = {"id": self._new_id("BA"), "created_at": _timestamp(),
                    "account_holder_name": account_holder_name.strip(), "account_number_ending": iban[-2:],
                    "bank_name": "Fake Bank", "country_code": iban[:2], "currency": "EUR",
                    "enabled": True, "metadata": {}, "links": {"customer": customer["id"]}}
            self.customer_bank_accounts[bank["id"]] = bank
            mandate = {"id": self._new_id("MD"), "created_at": _timestamp(),
                       "reference": f"FAKE-{next(self._ids):06d}", "status": "pending_submission",
                       "scheme": "sepa_core", "payments_require_approval": False,
                       "next_possible_charge_date": (_now().date() + dt.timedelta(days=3)).isoformat(),
                       "metadata": dict(brq["mandate_request"]["metadata"]),
                       "links": {"customer": customer["id"], "customer_bank_account": bank["id"],
                                 "creditor": CREDITOR_ID}}
            self.mandates[mandate["id"]] = mandate
            brq["status"] = "fulfilled"
            brq["mandate_request"]["links"] = {"mandate": mandate["id"]}
            brq["links"].update(customer_bank_account=bank["id"], mandate_request_mandate=mandate["id"])
            for action in brq["actions"]:
                action["status"] = "completed"
            events = [
                self._event("billing_requests", "fulfilled",
                            {"billing_request": brq["id"], "customer": customer["id"],
                             "customer_bank_account": bank["id"], "mandate_request_mandate": mandate["id"]},
                            brq, "payer", "billing_request_fulfilled", "This billing request has been fulfilled."),
                self._event("mandates", "created", {"mandate": mandate["id"]}, mandate, "api",
                            "mandate_created", "Mandate created via a billing request flow."),
            ]
            redirect_uri = flow["redirect_uri"]
        self._send(events)
        return redirect_uri

    def _transition(self, collection, obj_id, steps) -> None:
        """Apply steps [(allowed_from, to, event_args)]. Steps before the last are lead-ins,
        skipped when they do not apply (confirm_payment submits first only if needed); the last
        must apply, else TransitionError and nothing changes."""
        kind = collection[:-1]
        events: list[dict] = []
        with self.lock:
            obj = getattr(self, collection)[obj_id]
            for i, (allowed, to, args) in enumerate(steps):
                if obj["status"] not in allowed:
                    if i < len(steps) - 1:
                        continue
                    expected = " or ".join(sorted(allowed))
                    raise TransitionError(f"{kind} {obj_id} is {obj['status']}, not {expected}")
                obj["status"] = to
                obj["links"].update({k: v for k, v in args.get("links", {}).items() if k != kind})
                details = {k: v for k, v in args.items() if k != "links"}
                events.append(self._event(collection, to, {kind: obj_id, **args.get("links", {})}, obj, **details))
        self._send(events)

    def activate_mandate(self, mandate_id) -> None:
        self._transition("mandates", mandate_id, [
            ({"pending_submission"}, "submitted", dict(origin="gocardless", cause="mandate_submitted",
             description="The mandate has been submitted to the banks.")),
            ({"submitted"}, "active", dict(origin="gocardless", cause="mandate_activated",
             description="The time window after submission for the banks to refuse a mandate has ended "
                         "without any errors being received, so this mandate is now active."))])

    def fail_mandate(self, mandate_id) -> None:
        self._transition("mandates", mandate_id, [
            ({"pending_submission", "submitted"}, "failed", dict(origin="bank", cause="invalid_bank_details",
             description="The bank account details for this mandate were invalid."))])

    _SUBMIT = ({"pending_submission"}, "submitted", dict(origin="gocardless", cause="payment_submitted",
               description="Payment submitted to the banks. As a result, it can no longer be cancelled."))

    def submit_payment(self, payment_id) -> None:
        self._transition("payments", payment_id, [self._SUBMIT])

    def confirm_payment(self, payment_id) -> None:
        self._transition("payments", payment_id, [self._SUBMIT, (
            {"submitted"}, "confirmed", dict(origin="gocardless", cause="payment_confirmed",
            description="Enough time has passed since the payment was submitted for the banks to "
                        "return an error, so this payment is now confirmed."))])

    def pay_out(self, payment_id) -> None:
        payout = self._new_id("PO")
        self._transition("payments", payment_id, [({"confirmed"}, "paid_out", dict(
            origin="gocardless", cause="payment_paid_out", links={"payout": payout},
            description="The payment has been paid out by GoCardless."))])

    def fail_payment(self, payment_id) -> None:
        self._transition("payments", payment_id, [self._SUBMIT, (
            {"submitted"}, "failed", dict(origin="bank", cause="insufficient_funds", reason_code="AM04",
            will_attempt_retry=False,
            description="The customer's account had insufficient funds to make this payment."))])

    def charge_back(self, payment_id) -> None:
        self._transition("payments", payment_id, [({"confirmed", "paid_out"}, "charged_back", dict(
            origin="bank", cause="refund_requested", reason_code="MD06",
            description="The customer asked their bank to refund this payment."))])

    _ACTIONS = {"authorise", "activate_mandate", "fail_mandate", "submit_payment", "confirm_payment",
                "pay_out", "fail_payment", "charge_back"}

    def _test_action(self, req: Request) -> Reply:
        action = req.params["action"]
        if action not in self._ACTIONS:
            return Reply(404, {"error": f"no test action {action}"})
        try:
            result = getattr(self, action)(req.params["id"], **(req.json() or {}))
        except KeyError:
            return Reply(404, {"error": f"no such object {req.params['id']}"})
        except ValueError as exc:
            return Reply(409, {"error": str(exc)})
        return Reply(200, {"ok": True, "result": result})

