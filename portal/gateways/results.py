"""What gateways hand to services: plain results and errors, no provider object and no model."""
from __future__ import annotations

import json
from dataclasses import dataclass, field


class GatewayError(Exception):
    """The provider refused or could not be reached; the message is safe to log, not to show."""


class BadSignature(Exception):
    """A webhook that the provider did not sign (or not recently)."""


class UnusableFile(ValueError):
    """A file handed to us (a bank statement, a Factur-X invoice) that cannot be used. `where`
    names the place at fault (a line, an element, a business term) for the 4xx answer, the CLI
    and the back office; `shown` is how the message names it when that differs."""

    def __init__(self, message: str, where: str | None = None, shown: str | None = None):
        super().__init__(f"{shown or where}: {message}" if where else message)
        self.message = message
        self.where = where


@dataclass(frozen=True)
class Redirect:
    """A hosted page to send the debtor to, and the provider's id of what it is for."""
    ref: str
    url: str


@dataclass(frozen=True)
class CheckoutLine:
    """One line of a hosted checkout page: what the debtor sees and pays for it."""
    label: str
    amount: int  # minor units


@dataclass(frozen=True)
class Reversal:
    """Money taken back: `total` so far under `key` (a refund total grows; a chargeback is whole)."""
    kind: str  # refund | chargeback | failed
    key: str
    total: int


@dataclass(frozen=True)
class PaymentState:
    """What the provider says of one of our attempts now."""
    ref: str                 # the attempt's provider_ref: Checkout Session or GoCardless payment id
    status: str              # created | processing | succeeded | failed | expired
    payment_ref: str | None  # the provider's id of the money (PaymentIntent, GoCardless payment)
    amount: int
    currency: str
    reversals: tuple[Reversal, ...] = ()


@dataclass(frozen=True)
class ReversalState:
    """A refund or chargeback seen on its own object (Stripe charge or dispute)."""
    payment_ref: str
    reversal: Reversal


@dataclass(frozen=True)
class Recovery:
    """Money taken back and then returned: a card chargeback the creditor won."""
    payment_ref: str
    reversal_key: str  # the reversal it undoes (the dispute's id)
    amount: int


@dataclass(frozen=True)
class MandateState:
    mandate_ref: str
    status: str  # the provider's: pending_submission, submitted, active, cancelled, failed...
    billing_request_ref: str | None = None
    bank_name: str | None = None
    account_ending: str | None = None


@dataclass(frozen=True)
class Notification:
    """One provider event, signature checked; `resolve` says what its object is now."""
    provider: str
    event_id: str
    type: str
    raw: dict = field(repr=False)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def read_json(body: bytes):
    """A provider's JSON body as RFC 8259 has it: NaN and Infinity, which Python's parser accepts
    and PostgreSQL's JSON type refuses, make it unreadable (a 400, not a 500 at the insert)."""
    return json.loads(body, parse_constant=_no_constant)
