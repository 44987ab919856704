"""A fake Stripe API for the real `stripe` SDK: Checkout Sessions, PaymentIntents, charges, refunds
and disputes in Stripe's documented shapes, a hosted Checkout page stand-in, and test actions that
move payments on and send webhooks signed exactly as Stripe signs them.

Point the SDK at it with `stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url})`.
State changes happen under `self.lock`; the events they produce are delivered only after the lock
is released, because the app's webhook handler calls back into this server on another thread.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import time
import urllib.parse

import stripe

from fakes.provider_http import Delivery, ProviderServer, Reply, Request, redirect

CARD_OK, CARD_DECLINED, CARD_3DS = "4242424242424242", "4000000000000002", "4000000000003220"
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "xof", "xaf"}
SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£"}
PREFIXES = {"cs_": "sessions", "pi_": "payment_intents", "ch_": "charges", "re_": "refunds", "dp_": "disputes"}


class CardDeclined(Exception):
    """The card was refused (test card 4000000000000002, or a failed 3-D Secure authentication)."""


class FakeStripeError(Exception):
    """An API error as Stripe answers it; raised by the Python test actions too."""

    def __init__(self, status, message, type="invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status = status
        self.error = {"type": type, "message": message,
                      **({"param": param} if param else {}), **({"code": code} if code else {})}


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}" if prefix == "cs" else f"{prefix}_{secrets.token_hex(12)}"


def _missing(param: str) -> FakeStripeError:
    return FakeStripeError(400, f"Missing required param: {param}.", param=param, code="parameter_missing")


def _positive_int(value, param: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FakeStripeError(400, f"Invalid integer: {value}", param=param, code="parameter_invalid_integer")
    if number <= 0:
        raise FakeStripeError(400, f"This value must be greater than or equal to 1 ({param}).", param=param)
    return number


def parse_form(pairs: list[tuple[str, str]]) -> dict:
    """`line_items[0][price_data][unit_amount]=500` and `expand[]=x` back into nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        match = re.match(r"^([^\[]+)((?:\[[^\]]*\])*)$", key)
        if not match:
            continue
        parts = [match.group(1)] + re.findall(r"\[([^\]]*)\]", match.group(2))
        node = root
        for i, part in enumerate(parts):
            if part == "":  # `a[]`: append
                part = str(len(node))
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node.setdefault(part, {})

    def lists(node, parent=None):
        if not isinstance(node, dict):
            return node
        node = {k: lists(v, k) for k, v in node.items()}
        if parent != "metadata" and node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    return lists(root)


def money(amount: int, currency: str) -> str:
    value = str(amount) if currency in ZERO_DECIMAL else f"{amount / 100:.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


class FakeStripe(ProviderServer):
    def __init__(self, api_key="sk_test_fake", webhook_secret="whsec_test_fake", auto_deliver=True):
        super().__init__()
        self.api_key, self.webhook_secret, self.auto_deliver = api_key, webhook_secret, auto_deliver
        #: seconds each API request takes before it is handled (outside the lock): a slow network,
        #: for tests of requests that overlap
        self.latency = 0.0
        self.sessions: dict[str, dict] = {}
        self.line_items: dict[str, list[dict]] = {}  # by session id
        self.payment_intents: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.events: list[dict] = []
        self.pending: list[dict] = []
        self._idempotent: dict[str, tuple[str, Reply]] = {}  # key -> (request fingerprint, reply)
        self._pi_metadata: dict[str, dict] = {}  # session id -> payment_intent_data[metadata]
        api = [("POST", "/v1/checkout/sessions", self._create_session),
               ("GET", "/v1/checkout/sessions", self._list_sessions),
               ("GET", "/v1/checkout/sessions/{id}", lambda r, p: self._get("sessions", r.params["id"])),
               ("GET", "/v1/checkout/sessions/{id}/line_items", self._list_line_items),
               ("POST", "/v1/checkout/sessions/{id}/expire", lambda r, p: self._expire(r.params["id"], p["_out"])),
               ("GET", "/v1/payment_intents/{id}", lambda r, p: self._get("payment_intents", r.params["id"])),
               ("GET", "/v1/charges/{id}", lambda r, p: self._get("charges", r.params["id"])),
               ("GET", "/v1/disputes/{id}", lambda r, p: self._get("disputes", r.params["id"])),
               ("GET", "/v1/refunds/{id}", lambda r, p: self._get("refunds", r.params["id"])),
               ("POST", "/v1/refunds", self._create_refund)]
        for method, pattern, handler in api:
            self.route(method, pattern, self._api(handler))
        self.route("GET", "/c/pay/{id}", self._page_pay)
        self.route("POST", "/c/pay/{id}", self._page_pay_submit)
        self.route("GET", "/c/3ds/{id}", self._page_3ds)
        self.route("POST", "/c/3ds/{id}", self._page_3ds_submit)
        self.route("POST", "/_test/{action}/{id}", self._test_action)

    # --- webhooks ----------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None, secret: str | None = None) -> str:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.".encode() + body, hashlib.sha256)
        return f"t={t},v1={mac.hexdigest()}"

    def deliver(self, event: dict, timestamp: int | None = None) -> Delivery:
        with self.lock:
            self.pending[:] = [e for e in self.pending if e is not event]
        body = json.dumps(event).encode()
        return self.post_webhook(body, {"Stripe-Signature": self.sign(body, timestamp),
                                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})

    def deliver_pending(self) -> list[Delivery]:
        with self.lock:
            events, self.pending[:] = list(self.pending), []
        return [self.deliver(e) for e in events]

    def _emit(self, type: str, obj: dict, out: list) -> None:
        """Record an event (caller holds the lock); `out` collects those to deliver after release."""
        event = {"id": _id("evt"), "object": "event", "api_version": stripe._api_version._ApiVersion.CURRENT,
                 "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": type,
                 "data": {"object": copy.deepcopy(obj)}}
        self.events.append(event)
        (out if self.auto_deliver else self.pending).append(event)

    def _run(self, fn, *args):
        """Change state under the lock, then deliver the events it produced without it."""
        out: list = []
        try:
            with self.lock:
                return fn(*args, out)
        finally:
            for event in out:
                self.deliver(event)

    # --- API plumbing ------------------------------------------------------------------------

    def _api(self, handler):
        def wrapped(req: Request) -> Reply:
            if req.headers.get("authorization") != f"Bearer {self.api_key}":
                given = req.headers.get("authorization", "").removeprefix("Bearer ")
                return Reply(401, {"error": {"type": "invalid_request_error",
                                             "message": f"Invalid API Key provided: {given[:8]}****{given[-4:]}"}})
            raw = req.body.decode()  # GET and DELETE carry their params in the query string
            pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True) if req.method == "POST" else \
                [(k, v) for k, vs in req.query.items() for v in vs]
            params = parse_form(pairs)
            if self.latency:
                time.sleep(self.latency)
            key = req.headers.get("idempotency-key") if req.method == "POST" else None
            fingerprint = f"{req.path}?{raw}"
            with self.lock:  # held across check-run-store, so a key's first request finishes first
                if key and key in self._idempotent:
                    seen, reply = self._idempotent[key]
                    if seen != fingerprint:
                        return Reply(400, {"error": {"type": "idempotency_error", "message": (
                            "Keys for idempotent requests can only be used with the same parameters they "
                            f"were first used with. Try using a key other than '{key}' if you meant to "
                            "execute a different request.")}})
                    return Reply(reply.status, copy.deepcopy(reply.body), {"Idempotent-Replayed": "true"})
                out: list = []
                try:
                    obj = self._expand(handler(req, {**params, "_out": out}), params.get("expand") or [])
                    reply = Reply(200, obj)
                except FakeStripeError as e:
                    reply = Reply(e.status, {"error": e.error})
                if key:
                    self._idempotent[key] = (fingerprint, Reply(reply.status, copy.deepcopy(reply.body)))
            for event in out:
                self.deliver(event)
            return reply
        return wrapped

    def _find(self, kind: str, id: str) -> dict:
        obj = getattr(self, kind).get(id)
        if obj is None:
            noun = {"sessions": "checkout.session", "payment_intents": "payment_intent"}.get(kind, kind[:-1])
            raise FakeStripeError(404, f"No such {noun}: '{id}'", param="id", code="resource_missing")
        return obj

    def _get(self, kind, id):
        return copy.deepcopy(self._find(kind, id))

    def _expand(self, obj: dict, paths) -> dict:
        """`expand[]=payment_intent.latest_charge`: replace id strings by (copies of) the objects;
        on a list, `expand[]=data.payment_intent` expands in each of its objects."""
        for path in paths if isinstance(paths, list) else [paths]:
            self._expand_path(obj, path.split("."))
        return obj

    def _expand_path(self, node, parts: list[str]) -> None:
        part, rest = parts[0], parts[1:]
        if isinstance(node, dict) and part not in node:
            raise FakeStripeError(400, f"This property cannot be expanded ({part}).", param="expand")
        value = node.get(part) if isinstance(node, dict) else None
        if part == "data" and isinstance(value, list) and node.get("object") == "list":
            for item in value:
                if rest:
                    self._expand_path(item, rest)
            return
        if isinstance(value, str) and value[:3] in PREFIXES:
            node[part] = value = copy.deepcopy(getattr(self, PREFIXES[value[:3]])[value])
        elif value is not None and not isinstance(value, dict):
            raise FakeStripeError(400, f"This property cannot be expanded ({part}).", param="expand")
        if rest and value is not None:
            self._expand_path(value, rest)

    # --- checkout sessions -------------------------------------------------------------------

    def _create_session(self, req, p):
        for name in ("mode", "success_url", "line_items"):
            if not p.get(name):
                raise _missing(name)
        if p["mode"] != "payment":
            raise FakeStripeError(400, "This fake only supports mode=payment.", param="mode")
        if not isinstance(p["line_items"], list):
            raise FakeStripeError(400, "Invalid array", param="line_items")
        items, currencies = [], set()
        for i, li in enumerate(p["line_items"]):
            pd = li.get("price_data") or {}
            for name in ("currency", "unit_amount"):
                if not pd.get(name):
                    raise _missing(f"line_items[{i}][price_data][{name}]")
            if not (pd.get("product_data") or {}).get("name"):
                raise _missing(f"line_items[{i}][price_data][product_data][name]")
            if not li.get("quantity"):
                raise _missing(f"line_items[{i}][quantity]")
            unit = _positive_int(pd["unit_amount"], f"line_items[{i}][price_data][unit_amount]")
            qty = _positive_int(li["quantity"], f"line_items[{i}][quantity]")
            currency = pd["currency"].lower()
            currencies.add(currency)
            items.append({"id": _id("li"), "object": "item", "amount_discount": 0, "amount_subtotal": unit * qty,
                          "amount_tax": 0, "amount_total": unit * qty, "currency": currency,
                          "description": pd["product_data"]["name"], "quantity": qty,
                          "price": {"id": _id("price"), "object": "price", "active": False, "currency": currency,
                                    "unit_amount": unit, "product": _id("prod"), "type": "one_time",
                                    "livemode": False}})
        if len(currencies) > 1:
            raise FakeStripeError(400, "All line items must use the same currency.", param="line_items")
        now = int(time.time())
        expires_at = int(p.get("expires_at") or now + 86400)
        if not now + 1800 <= expires_at <= now + 86400:
            raise FakeStripeError(400, "The `expires_at` timestamp must be between 30 minutes and 24 hours "
                                       "from Checkout Session creation.", param="expires_at")
        sid, total = _id("cs"), sum(li["amount_total"] for li in items)
        session = {"id": sid, "object": "checkout.session", "mode": "payment", "status": "open",
                   "payment_status": "unpaid", "amount_subtotal": total, "amount_total": total,
                   "currency": currencies.pop(), "customer": None, "customer_email": p.get("customer_email"),
                   "customer_details": None, "client_reference_id": p.get("client_reference_id"),
                   "metadata": p.get("metadata") or {}, "success_url": p["success_url"],
                   "cancel_url": p.get("cancel_url"), "url": self.checkout_url(sid), "payment_intent": None,
                   "payment_method_types": p.get("payment_method_types") or ["card"],
                   "locale": p.get("locale"), "created": now, "expires_at": expires_at, "livemode": False}
        self.sessions[sid] = session
        self.line_items[sid] = items
        # payment_intent_data[metadata] belongs on the PaymentIntent made when the session completes
        self._pi_metadata[sid] = (p.get("payment_intent_data") or {}).get("metadata") or {}
        return copy.deepcopy(session)

    def _list_sessions(self, req, p):
        """GET /v1/checkout/sessions, newest first, filtered by `payment_intent` when given."""
        found = [x for x in self.sessions.values() if p.get("payment_intent") in (None, x["payment_intent"])]
        limit = _positive_int(p.get("limit") or 10, "limit")
        found.sort(key=lambda x: x["created"], reverse=True)
        return {"object": "list", "data": copy.deepcopy(found[:limit]), "has_more": len(found) > limit,
                "url": "/v1/checkout/sessions"}

    def _list_line_items(self, req, p):
        self._find("sessions", req.params["id"])
        return {"object": "list", "data": copy.deepcopy(self.line_items[req.params["id"]]), "has_more": False,
                "url": f"/v1/checkout/sessions/{req.params['id']}/line_items"}

    def _expire(self, sid, out):
        session = self._find("sessions", sid)
        if session["status"] != "open":
            raise FakeStripeError(400, f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                                       f"This Checkout Session has a status of \"{session['status']}\".")
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session, out)
        return copy.deepcopy(session)

    def checkout_url(self, session_id) -> str:
        return f"{self.url}/c/pay/{session_id}"

    # --- payments ----------------------------------------------------------------------------

    def _open(self, sid) -> dict:
        session = self._find("sessions", sid)
        if session["status"] != "open":
            raise FakeStripeError(400, "This Checkout Session is no longer active.")
        return session

    def _new_pi(self, session, status) -> dict:
        pi = {"id": _id("pi"), "object": "payment_intent", "amount": session["amount_total"],
              "amount_received": 0, "currency": session["currency"], "status": status, "latest_charge": None,
              "metadata": copy.deepcopy(self._pi_metadata.get(session["id"], {})),
              "payment_method_types": session["payment_method_types"], "last_payment_error": None,
              "created": int(time.time()), "livemode": False}
        self.payment_intents[pi["id"]] = pi
        session.update(status="complete", payment_intent=pi["id"], url=None,
                       customer_details={"email": session["customer_email"], "name": None})
        return pi

    def _succeed_pi(self, pi) -> None:
        charge = {"id": _id("ch"), "object": "charge", "amount": pi["amount"], "amount_captured": pi["amount"],
                  "amount_refunded": 0, "refunded": False, "disputed": False, "currency": pi["currency"],
                  "payment_intent": pi["id"], "status": "succeeded", "paid": True, "captured": True,
                  "metadata": copy.deepcopy(pi["metadata"]), "created": int(time.time()), "livemode": False}
        self.charges[charge["id"]] = charge
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"])

    def _pay(self, sid, card, authenticate, out):
        session = self._open(sid)
        card = re.sub(r"\D", "", card or "")
        if card == CARD_DECLINED:
            raise CardDeclined("Your card was declined.")
        if card == CARD_3DS and not authenticate:
            raise CardDeclined("We are unable to authenticate your payment method. Your card was declined.")
        if card not in (CARD_OK, CARD_3DS):
            raise CardDeclined("Your card number is invalid.")
        pi = self._new_pi(session, "processing")
        self._succeed_pi(pi)
        session["payment_status"] = "paid"
        self._emit("checkout.session.completed", session, out)
        self._emit("payment_intent.succeeded", pi, out)
        return session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid)

    def pay(self, session_id, card=CARD_OK, authenticate=True) -> str:
        """As if the hosted form was submitted (3-D Secure cards: `authenticate` is the shopper's answer)."""
        return self._run(self._pay, session_id, card, authenticate)

    def complete_async(self, session_id) -> None:
        def run(out):
            self._new_pi(self._open(session_id), "processing")
            self._emit("checkout.session.completed", self.sessions[session_id], out)
        self._run(run)

    def settle_async(self, session_id, succeed=True) -> None:
        def run(out):
            session = self._find("sessions", session_id)
            pi = self.payment_intents.get(session["payment_intent"] or "")
            if not pi or pi["status"] != "processing":
                raise FakeStripeError(400, "This Checkout Session has no payment in processing.")
            if succeed:
                self._succeed_pi(pi)
                session["payment_status"] = "paid"
                self._emit("checkout.session.async_payment_succeeded", session, out)
                self._emit("payment_intent.succeeded", pi, out)
            else:
                pi.update(status="requires_payment_method", last_payment_error={
                    "type": "card_error", "code": "payment_method_not_available",
                    "message": "The debit could not be collected."})
                self._emit("checkout.session.async_payment_failed", session, out)
                self._emit("payment_intent.payment_failed", pi, out)
        self._run(run)

    def expire(self, session_id) -> None:
        self._run(self._expire, session_id)

    def _charge_of(self, payment_intent_id) -> dict:
        pi = self._find("payment_intents", payment_intent_id)
        if not pi["latest_charge"]:
            raise FakeStripeError(400, "This PaymentIntent does not have a successful charge.",
                                  param="payment_intent")
        return self.charges[pi["latest_charge"]]

    def _refund(self, charge, amount, out) -> dict:
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise FakeStripeError(400, f"Charge {charge['id']} has already been refunded.",
                                  code="charge_already_refunded")
        amount = left if amount is None else _positive_int(amount, "amount")
        if amount > left:
            raise FakeStripeError(400, f"Refund amount ({money(amount, charge['currency'])}) is greater than "
                                       f"unrefunded amount on charge ({money(left, charge['currency'])})",
                                  param="amount")
        refund = {"id": _id("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "payment_intent": charge["payment_intent"], "status": "succeeded", "currency": charge["currency"],
                  "reason": None, "metadata": {}, "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("refund.created", refund, out)
        self._emit("charge.refunded", charge, out)
        return copy.deepcopy(refund)

    def _create_refund(self, req, p):
        if p.get("charge"):
            charge = self._find("charges", p["charge"])
        elif p.get("payment_intent"):
            charge = self._charge_of(p["payment_intent"])
        else:
            raise FakeStripeError(400, "One of the following params should be provided for this request: "
                                       "payment_intent or charge.", code="parameter_missing")
        return self._refund(charge, p.get("amount"), p["_out"])

    def refund(self, payment_intent_id, amount=None) -> dict:
        return self._run(lambda out: self._refund(self._charge_of(payment_intent_id), amount, out))

    def dispute(self, payment_intent_id, amount=None) -> dict:
        def run(out):
            charge = self._charge_of(payment_intent_id)
            dp = {"id": _id("dp"), "object": "dispute", "amount": amount or charge["amount"],
                  "currency": charge["currency"], "charge": charge["id"], "payment_intent": payment_intent_id,
                  "status": "needs_response", "reason": "fraudulent", "is_charge_refundable": False,
                  "metadata": {}, "created": int(time.time()), "livemode": False}
            self.disputes[dp["id"]] = dp
            charge["disputed"] = True
            self._emit("charge.dispute.created", dp, out)
            return copy.deepcopy(dp)
        return self._run(run)

    def close_dispute(self, dispute_id, status="lost") -> None:
        if status not in ("won", "lost"):
            raise ValueError("status must be 'won' or 'lost'")

        def run(out):
            dp = self._find("disputes", dispute_id)
            dp["status"] = status
            self._emit("charge.dispute.closed", dp, out)
        self._run(run)

    # --- hosted pages ------------------------------------------------------------------------

    def _html(self, status, title, body) -> Reply:
        return Reply(status, f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
                             f"</head><body><main><h1>{title}</h1>{body}</main></body></html>")

    def _page_pay(self, req: Request, error: str | None = None, status=200) -> Reply:
        session = self.sessions.get(req.params["id"])
        if session is None:
            return self._html(404, "Not found", "<p>No such Checkout Session.</p>")
        if session["status"] != "open":
            return self._html(400, "Checkout", "<p>This Checkout Session is no longer active.</p>")
        e = html.escape
        alert = f'<p role="alert">{e(error)}</p>' if error else ""
        cancel = f'<p><a href="{e(session["cancel_url"])}">Cancel</a></p>' if session["cancel_url"] else ""
        items = "".join(f"<li>{e(li['description'])} × {li['quantity']}: "
                        f"{e(money(li['amount_total'], li['currency']))}</li>" for li in self.line_items[session["id"]])
        return self._html(status, "Checkout", f"<ul>{items}</ul>{alert}"
                          f'<form method="post" action="/c/pay/{e(session["id"])}">'
                          f'<label for="card">Card number</label> <input id="card" name="card" '
                          f'value="{CARD_OK}" inputmode="numeric" autocomplete="cc-number" required> '
                          f'<button type="submit">Pay {e(money(session["amount_total"], session["currency"]))}'
                          f"</button></form>{cancel}")

    def _page_pay_submit(self, req: Request) -> Reply:
        card = re.sub(r"\D", "", (req.form().get("card") or [""])[0])
        if card == CARD_3DS and req.params["id"] in self.sessions:
            return redirect(f"/c/3ds/{req.params['id']}")
        return self._pay_and_redirect(req, card, True)

    def _pay_and_redirect(self, req, card, authenticate) -> Reply:
        try:
            return redirect(self.pay(req.params["id"], card, authenticate))
        except CardDeclined as e:
            return self._page_pay(req, str(e), 402)
        except FakeStripeError:  # unknown or no longer open: the page says which
            return self._page_pay(req)

    def _page_3ds(self, req: Request) -> Reply:
        if (self.sessions.get(req.params["id"]) or {}).get("status") != "open":
            return self._page_pay(req)
        action = f'/c/3ds/{html.escape(req.params["id"])}'
        return self._html(200, "3D Secure authentication", "<p>Your bank asks you to confirm this payment.</p>"
                          f'<form method="post" action="{action}"><button name="result" value="complete">'
                          f"Complete authentication</button></form>"
                          f'<form method="post" action="{action}"><button name="result" value="fail">'
                          f"Fail authentication</button></form>")

    def _page_3ds_submit(self, req: Request) -> Reply:
        ok = (req.form().get("result") or [""])[0] == "complete"
        return self._pay_and_redirect(req, CARD_3DS, ok)

    # --- test actions over HTTP --------------------------------------------------------------

    def _test_action(self, req: Request) -> Reply:
        """POST /_test/<action>/<id>, arguments as a JSON object or a form; answers JSON."""
        if req.headers.get("content-type", "").startswith("application/json"):
            args = req.json() or {}
        else:
            args = {k: v[-1] for k, v in req.form().items()} if req.body else {}
        sid, action = req.params["id"], req.params["action"]
        flag = lambda v: v if isinstance(v, bool) else str(v).lower() not in ("0", "false", "no")
        amount = lambda: int(args["amount"]) if args.get("amount") not in (None, "") else None
        actions = {
            "pay": lambda: {"success_url": self.pay(sid, args.get("card", CARD_OK),
                                                    flag(args.get("authenticate", True)))},
            "complete_async": lambda: self.complete_async(sid) or self.sessions[sid],
            "settle_async": lambda: self.settle_async(sid, flag(args.get("succeed", True))) or self.sessions[sid],
            "refund": lambda: self.refund(sid, amount()),
            "dispute": lambda: self.dispute(sid, amount()),
            "close_dispute": lambda: self.close_dispute(sid, args.get("status", "lost")) or self.disputes[sid],
            "expire": lambda: self.expire(sid) or self.sessions[sid],
        }
        if action not in actions:
            return self.not_found(req.path)
        try:
            return Reply(200, copy.deepcopy(actions[action]()))
        except CardDeclined as e:
            return Reply(402, {"error": {"type": "card_error", "code": "card_declined", "message": str(e)}})
        except FakeStripeError as e:
            return Reply(e.status, {"error": e.error})
        except ValueError as e:
            return Reply(400, {"error": {"type": "invalid_request_error", "message": str(e)}})
