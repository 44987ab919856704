"""SMS through Twilio's Messages API, with the official SDK's Client.

Twilio has no idempotency key: a request that times out or dies with a 5xx may or may not have
created the message. Such outcomes raise SmsUncertain, and the caller (the outbox, which recorded
the hand-over durably before the request) must look the message up with `find_sent` before any
retry. A 4xx is a refusal (SmsRefused, with Twilio's error code): nothing was sent.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .results import GatewayError

DEFAULT_API_BASE = "https://api.twilio.com"
# Twilio's clock against ours when a hand-over is looked up: a message created a little before
# our record of the hand-over (skewed clocks) is still the one we handed over.
CLOCK_SKEW = timedelta(minutes=5)
# How many messages to one number from our sender a look-up reads at most (newest first): with
# at most one SMS a day per debtor, years of them.
LOOKUP_LIMIT = 1000
# Twilio error codes that say the recipient cannot get an SMS from us: the step goes by e-mail.
UNREACHABLE = {21211: "invalid number", 21214: "not reachable", 21408: "region not enabled",
               21610: "unsubscribed recipient", 21612: "not reachable from this sender",
               21614: "not a mobile number"}


class SmsRefused(GatewayError):
    """Twilio answered no (4xx): the message was not created. `code` is Twilio's error code
    (21211 invalid number, 21610 unsubscribed recipient...); `retry_later` only for 429."""

    def __init__(self, message: str, status: int, code: int | None):
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retry_later(self) -> bool:
        return self.status == 429

    @property
    def unreachable(self) -> bool:
        """The recipient cannot get an SMS from us (invalid, landline, opted out)."""
        return self.code in UNREACHABLE


class SmsUncertain(GatewayError):
    """No clear answer (timeout, connection lost, 5xx): the message may exist at Twilio."""


class Sent(NamedTuple):
    sid: str     # Twilio's SM… id
    status: str  # queued, accepted, sending, sent…


class TwilioGateway:
    provider = "twilio"

    def __init__(self, account_sid: str, auth_token: str, sender: str, api_base: str | None = None,
                 timeout: float = 20):
        self.sender = sender
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.validator = RequestValidator(auth_token)
        http = TwilioHttpClient(timeout=timeout, proxy=requests.utils.get_environ_proxies(self.api_base) or None)
        # Proxy settings are looked up once, here, not from the environment on every request
        # (as StripeGateway does); requests' default adapter never retries a POST by itself,
        # which must stay so (a silent retry could send twice).
        http.session.trust_env = False
        # `environment` replaces os.environ for TWILIO_EDGE / TWILIO_REGION: our configuration
        # alone decides where requests go (an edge would rewrite the host of TWILIO_API_BASE).
        self.client = Client(account_sid, auth_token, http_client=http,
                             environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""})
        # The SDK's supported way to another server: the API domain's base URL, which every
        # request and every next_page_uri of a list is resolved against.
        self.client.api.base_url = self.api_base

    # --- sending ---------------------------------------------------------------------------------

    def send_sms(self, to: str, body: str, status_callback: str | None = None) -> Sent:
        """Hand one SMS to Twilio. Raises SmsRefused (not sent) or SmsUncertain (maybe sent)."""
        try:
            message = self.client.messages.create(to=to, from_=self.sender, body=body,
                                                  status_callback=status_callback)
        except TwilioRestException as e:
            if e.status >= 500:
                raise SmsUncertain(f"twilio: {e.status} {e.msg}") from e
            raise SmsRefused(f"twilio: {e.code or e.status} {e.msg}", e.status, e.code) from e
        except requests.RequestException as e:  # timeout, connection lost mid-request...
            raise SmsUncertain(f"twilio: no answer ({type(e).__name__})") from e
        except (TwilioException, ValueError) as e:  # an answer we cannot read
            raise SmsUncertain(f"twilio: unreadable answer ({e})") from e
        if not message.sid:
            raise SmsUncertain("twilio: an answer without a message id")
        return Sent(message.sid, str(message.status or "queued"))

    def find_sent(self, to: str, body: str, sent_after: datetime) -> str | None:
        """The sid of a message with exactly `body` that we sent to `to` since `sent_after` (an
        aware datetime: when the hand-over was recorded), or None: then it was never created.

        Twilio's list is filtered by To and From only, not DateSent: a message still queued has
        no date_sent yet, and it is precisely the one a lost answer leaves behind. Its
        date_created is compared instead, and the whole (short) list for that number is read."""
        if sent_after.tzinfo is None:
            raise ValueError("sent_after must be aware")
        since = sent_after - CLOCK_SKEW
        try:
            for message in self.client.messages.stream(to=to, from_=self.sender, page_size=100,
                                                       limit=LOOKUP_LIMIT):
                created = message.date_created
                if message.body == body and (not isinstance(created, datetime) or created >= since):
                    return message.sid
        except TwilioRestException as e:
            raise GatewayError(f"twilio: {e.status} {e.msg}") from e
        except (requests.RequestException, TwilioException, ValueError) as e:
            raise GatewayError(f"twilio: message list unavailable ({type(e).__name__})") from e
        return None

    def status_of(self, sid: str) -> str:
        """The message's status now (queued, sent, delivered, undelivered, failed...)."""
        try:
            return str(self.client.messages(sid).fetch().status)
        except TwilioRestException as e:
            raise GatewayError(f"twilio: {e.status} {e.msg}") from e
        except (requests.RequestException, TwilioException, ValueError) as e:
            raise GatewayError(f"twilio: no answer ({type(e).__name__})") from e

    # --- webhooks --------------------------------------------------------------------------------

    def verify_signature(self, url: str, params, signature: str | None) -> bool:
        """Whether a status callback or inbound message was signed by Twilio with our auth token:
        `url` exactly as Twilio requested it (scheme, host, path and query, as configured in
        status_callback or the number's webhook), `params` the POSTed form (a dict or a
        MultiDict), `signature` the X-Twilio-Signature header."""
        if not signature:
            return False
        return self.validator.validate(url, params, signature)
