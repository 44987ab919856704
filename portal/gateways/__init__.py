"""Payment providers behind one small interface: start a payment, start a mandate, collect,
parse a webhook and say what its object looks like now.

Gateways turn provider objects into the plain results below; they never touch models. A
webhook is never trusted for state: `resolve` re-fetches the object it names, so an event that
arrives late, twice or out of order yields the provider's current state, never an old one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app


class GatewayError(Exception):
    """The provider refused or could not be reached; the message is safe to log, not to show."""


class BadSignature(Exception):
    """A webhook that the provider did not sign (or not recently)."""


@dataclass(frozen=True)
class Redirect:
    """A hosted page to send the debtor to, and the provider's id of what it is for."""
    ref: str
    url: str


@dataclass(frozen=True)
class Line:
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


def card():
    """The configured Stripe gateway, or None: card payment is then not offered."""
    return _gateway("stripe")


def direct_debit():
    """The configured GoCardless gateway, or None: direct debit is then not offered."""
    return _gateway("gocardless")


def hosted_origins() -> list[str]:
    """Origins of the providers' hosted pages that portal forms may lead to (CSP form-action)."""
    return [o for gw in (card(), direct_debit()) if gw is not None for o in gw.hosted_origins]


def _gateway(name: str):
    cache = current_app.extensions.setdefault("relance_gateways", {})
    if name not in cache:
        cfg = current_app.config
        if name == "stripe":
            from .stripe import StripeGateway
            cache[name] = (StripeGateway(cfg["STRIPE_SECRET_KEY"], cfg["STRIPE_WEBHOOK_SECRET"], cfg["STRIPE_API_BASE"])
                           if cfg["STRIPE_SECRET_KEY"] and cfg["STRIPE_WEBHOOK_SECRET"] else None)
        else:
            from .gocardless import GoCardlessGateway
            cache[name] = (GoCardlessGateway(cfg["GOCARDLESS_ACCESS_TOKEN"], cfg["GOCARDLESS_WEBHOOK_SECRET"],
                                             cfg["GOCARDLESS_ENVIRONMENT"], cfg["GOCARDLESS_BASE_URL"])
                           if cfg["GOCARDLESS_ACCESS_TOKEN"] and cfg["GOCARDLESS_WEBHOOK_SECRET"] else None)
    return cache[name]
