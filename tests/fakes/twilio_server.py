"""A fake Twilio Messages API for the real `twilio` SDK: messages created, fetched and listed in
Twilio's documented JSON shapes (2010-04-01 API, basic auth, error bodies with code, message,
more_info and status), and test actions that move a message on (status callbacks) or make a
debtor reply (inbound message), both POSTed form-encoded and signed exactly as Twilio signs them.

Point the SDK at it with `client.api.base_url = fake.url` (as portal/gateways/twilio.py does with
TWILIO_API_BASE). `fail_next()` makes the next message POST go wrong after the message is
recorded: a hang-up (no answer at all) or a 5xx, the uncertain outcomes of a real hand-over.
State changes happen under `self.lock`; callbacks are delivered after it is released, because
the app's webhook may call back into this server on another thread.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Callable

import phonenumbers
import requests

from fakes.provider_http import Delivery, ProviderServer, Reply, Request

API = "/2010-04-01/Accounts/{account}"
# Twilio's default opt-out keywords on a long code (Advanced Opt-Out adds languages, ARRET...).
OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET"}
OPT_IN = {"START", "YES", "UNSTOP"}
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
           "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_ESCAPED = set("\f^{}\\[~]|€")


class _HangUp(Exception):
    """Raised by a route: close the connection without an answer."""


def twilio_signature(auth_token: str, url: str, params: dict[str, str | list[str]]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 keyed with the auth token over the full URL followed by
    every POST parameter, sorted by name, as name + value; base64."""
    data = url
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in sorted(values):
            data += name + value
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def segments(body: str) -> int:
    """num_segments as Twilio reports it (GSM-7 160/153, else UCS-2 70/67 in UTF-16 units)."""
    if all(c in GSM7 or c in GSM7_ESCAPED for c in body):
        units, single, multi = sum(2 if c in GSM7_ESCAPED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // multi)


@dataclass
class Callback(Delivery):
    url: str = ""
    params: dict | None = None


class FakeTwilio(ProviderServer):
    def __init__(self, sender: str = "+33757000001"):
        super().__init__()
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.sender = sender                    # an SMS-capable number of the account
        self.senders = {sender}
        self.messages: dict[str, dict] = {}      # sid -> the message as the API shows it
        self.created: list[dict] = []            # every POST to Messages.json, with its form
        self.opted_out: set[str] = set()         # numbers that texted STOP to the account
        self.inbound_url: str | None = None      # the number's "A message comes in" webhook
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.faults: list[int | None] = []       # next POSTs' fate after recording: None hang up, or a status
        self.route("POST", f"{API}/Messages.json", self._create)
        self.route("GET", f"{API}/Messages.json", self._list)
        self.route("GET", f"{API}/Messages/{{sid}}.json", self._fetch)

    def start(self):
        super().start()
        handler = self._server.RequestHandlerClass

        class HangingUp(handler):
            def _handle(self):
                try:
                    handler._handle(self)
                except _HangUp:
                    self.close_connection = True  # nothing written: the client sees the connection drop

            do_GET = do_POST = _handle

        self._server.RequestHandlerClass = HangingUp
        return self

    # --- the API ---------------------------------------------------------------------------------

    def _error(self, status: int, code: int, message: str) -> Reply:
        return Reply(status, {"code": code, "message": message,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})

    def _authorised(self, req: Request) -> Reply | None:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if not hmac.compare_digest(req.headers.get("authorization", ""), expected):
            return self._error(401, 20003, "Authenticate")
        if req.params["account"] != self.account_sid:
            return self._error(404, 20404, f"The requested resource {req.path} was not found")
        return None

    def _create(self, req: Request) -> Reply:
        refused = self._authorised(req)
        if refused:
            return refused
        form = {k: v[-1] for k, v in req.form().items()}
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if sender not in self.senders:
            return self._error(400, 21606, f"The 'From' phone number provided ({sender}) is not a valid message-capable "
                                           "Twilio phone number for this destination/account.")
        if not body:
            return self._error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        try:
            number = phonenumbers.parse(to)
            valid = re.fullmatch(r"\+[1-9]\d{6,14}", to) and phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            return self._error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE:
            return self._error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if to in self.opted_out:
            return self._error(400, 21610, "Attempt to send to unsubscribed recipient")
        with self.lock:
            message = self._new(to, sender, body, "outbound-api", "queued")
            message["_status_callback"] = form.get("StatusCallback")
            self.created.append({"sid": message["sid"], **form})
            fault = self.faults.pop(0) if self.faults else "none"
        if fault is None:
            raise _HangUp()
        if fault != "none":
            return self._error(fault, 20500, "An internal server error has occurred")
        return Reply(201, self._shown(message))

    def _fetch(self, req: Request) -> Reply:
        refused = self._authorised(req)
        if refused:
            return refused
        with self.lock:
            message = self.messages.get(req.params["sid"])
            if message is None:
                return self._error(404, 20404, f"The requested resource {req.path} was not found")
            return Reply(200, self._shown(message))

    def _list(self, req: Request) -> Reply:
        refused = self._authorised(req)
        if refused:
            return refused
        q = {k: v[-1] for k, v in req.query.items()}
        size = min(max(int(q.get("PageSize", 50)), 1), 1000)
        page = int(q.get("Page", 0))
        with self.lock:
            found = [m for m in self.messages.values() if self._matches(m, q)]
            # newest first, as Twilio lists them
            found.sort(key=lambda m: (m["_created"], m["_n"]), reverse=True)
            shown = [self._shown(m) for m in found[page * size:(page + 1) * size]]
        base = f"{API.format(account=self.account_sid)}/Messages.json"
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(p):
            extra = {"PageToken": f"PA{found[p * size - 1]['sid']}"} if p > 0 else {}
            return f"{base}?{urllib.parse.urlencode({**filters, 'PageSize': size, 'Page': p, **extra})}"

        more = (page + 1) * size < len(found)
        return Reply(200, {
            "messages": shown, "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(len(shown) - 1, 0), "uri": uri(page), "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None})

    @staticmethod
    def _matches(m: dict, q: dict) -> bool:
        if "To" in q and m["to"] != q["To"] or "From" in q and m["from"] != q["From"]:
            return False
        for key, keep in (("DateSent", lambda a, b: a == b), ("DateSent<", lambda a, b: a <= b),
                          ("DateSent>", lambda a, b: a >= b)):
            if key not in q:
                continue
            sent = m["_sent"]
            if sent is None:
                return False  # not sent yet: no DateSent to filter on
            if len(q[key]) == 10:  # YYYY-MM-DD: the day in GMT
                if not keep(sent.date().isoformat(), q[key]):
                    return False
            elif not keep(sent, datetime.strptime(q[key], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)):
                return False
        return True

    # --- messages --------------------------------------------------------------------------------

    def _new(self, to: str, sender: str, body: str, direction: str, status: str) -> dict:
        now = self.clock()
        message = {"sid": "SM" + secrets.token_hex(16), "to": to, "from": sender, "body": body,
                   "direction": direction, "status": status, "error_code": None, "error_message": None,
                   "num_segments": str(segments(body)), "num_media": "0", "_created": now, "_updated": now,
                   "_sent": now if direction == "inbound" else None, "_n": len(self.messages)}
        self.messages[message["sid"]] = message
        return message

    def _shown(self, m: dict) -> dict:
        def rfc2822(moment):  # "Sun, 06 Dec 2026 15:55:29 +0000"
            return format_datetime(moment) if moment else None

        uri = f"{API.format(account=self.account_sid)}/Messages/{m['sid']}"
        return {"account_sid": self.account_sid, "api_version": "2010-04-01", "body": m["body"],
                "date_created": rfc2822(m["_created"]), "date_sent": rfc2822(m["_sent"]),
                "date_updated": rfc2822(m["_updated"]), "direction": m["direction"], "error_code": m["error_code"],
                "error_message": m["error_message"], "from": m["from"], "messaging_service_sid": None,
                "num_media": m["num_media"], "num_segments": m["num_segments"], "price": None, "price_unit": "EUR",
                "sid": m["sid"], "status": m["status"], "to": m["to"], "uri": f"{uri}.json",
                "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"}}

    # --- test actions ----------------------------------------------------------------------------

    def fail_next(self, status: int | None = None, times: int = 1) -> None:
        """The next message POSTs are recorded, then hang up (status None) or answer `status` (5xx)."""
        with self.lock:
            self.faults.extend([status] * times)

    def sent_to(self, to: str) -> list[dict]:
        """Outbound messages to `to`, oldest first, as the API shows them."""
        with self.lock:
            return [self._shown(m) for m in self.messages.values()
                    if m["to"] == to and m["direction"].startswith("outbound")]

    def advance(self, sid: str, status: str, error_code: int | None = None) -> Callback | None:
        """Move an outbound message on (sent, delivered, undelivered, failed) and POST its status
        callback, if the message named one, as Twilio does."""
        with self.lock:
            m = self.messages[sid]
            m["status"], m["_updated"] = status, self.clock()
            if status in ("sent", "delivered", "undelivered") and m["_sent"] is None:
                m["_sent"] = m["_updated"]
            if error_code:
                m["error_code"], m["error_message"] = error_code, "Unknown destination handset"
            url = m["_status_callback"]
            params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": m["from"], "To": m["to"],
                      "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
            if error_code:
                params["ErrorCode"] = str(error_code)
        return self.deliver(url, params) if url else None

    def reply(self, sender: str, body: str, to: str | None = None) -> Callback | None:
        """`sender` texts `body` to our number: recorded as an inbound message, STOP and its
        kin opt the sender out of the account (further sends get 21610), START opts back in,
        and the message is POSTed to `inbound_url` (if set), signed."""
        to = to or self.sender
        with self.lock:
            m = self._new(to, sender, body, "inbound", "received")
            keyword = body.strip().upper()
            if keyword in OPT_OUT:
                self.opted_out.add(sender)
            elif keyword in OPT_IN:
                self.opted_out.discard(sender)
            params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "Body": body, "From": sender,
                      "To": to, "MessageSid": m["sid"], "SmsMessageSid": m["sid"], "SmsSid": m["sid"],
                      "SmsStatus": "received", "NumMedia": "0", "NumSegments": m["num_segments"]}
            if keyword in OPT_OUT | OPT_IN:
                params["OptOutType"] = "STOP" if keyword in OPT_OUT else "START"
        return self.deliver(self.inbound_url, params) if self.inbound_url else None

    def deliver(self, url: str, params: dict[str, str], signature: str | None = None) -> Callback:
        """POST `params` form-encoded to `url`, signed for that exact URL (or with `signature`, to
        forge one), to the app over HTTP or into `webhook_sink(body, headers)`."""
        body = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1",
                   "X-Twilio-Signature": signature or twilio_signature(self.auth_token, url, params),
                   "I-Twilio-Idempotency-Token": secrets.token_hex(16)}
        status = None
        if self.webhook_sink is not None:
            status = self.webhook_sink(body, headers)
        else:
            try:
                status = requests.post(url, data=body, headers=headers, timeout=30).status_code
            except requests.ConnectionError:
                status = None
        callback = Callback(body, headers, status, url, params)
        self.deliveries.append(callback)
        return callback
