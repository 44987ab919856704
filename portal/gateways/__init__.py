"""Payment providers behind one small interface: start a payment, start a mandate, collect,
parse a webhook and say what its object looks like now.

Gateways turn provider objects into the plain results of results.py (named here too); they
never touch models. A webhook is never trusted for state: `resolve` re-fetches the object it
names, so an event that arrives late, twice or out of order yields the provider's current
state, never an old one.
"""
from __future__ import annotations

from flask import current_app

from .results import (BadSignature, CheckoutLine, GatewayError, MandateState, Notification, PaymentState, Recovery,
                      Redirect, Reversal, ReversalState)

__all__ = ["BadSignature", "CheckoutLine", "GatewayError", "MandateState", "Notification", "PaymentState", "Recovery",
           "Redirect", "Reversal", "ReversalState", "card", "direct_debit", "hosted_origins", "sms"]


def card():
    """The configured Stripe gateway, or None: card payment is then not offered."""
    return _gateway("stripe")


def direct_debit():
    """The configured GoCardless gateway, or None: direct debit is then not offered."""
    return _gateway("gocardless")


def sms():
    """The configured Twilio gateway (gateways/twilio.py), or None: SMS steps then go by e-mail."""
    return _gateway("twilio")


def hosted_origins() -> list[str]:
    """Origins of the providers' hosted pages that portal forms may lead to (CSP form-action)."""
    return [o for gw in (card(), direct_debit()) if gw is not None for o in gw.hosted_origins]


def _gateway(name: str):
    cache = current_app.extensions.setdefault("relance_gateways", {})
    if name not in cache:
        cfg = current_app.config
        # Imported here, not above, and only when configured: a provider's SDK (gocardless_pro,
        # stripe and requests take about 0.1 s) loads when that provider is first used, not with
        # this package nor in a process (a `dunning run`) where the provider is not set up.
        gateway = None
        if name == "stripe" and cfg["STRIPE_SECRET_KEY"] and cfg["STRIPE_WEBHOOK_SECRET"]:
            from .stripe import StripeGateway
            gateway = StripeGateway(cfg["STRIPE_SECRET_KEY"], cfg["STRIPE_WEBHOOK_SECRET"], cfg["STRIPE_API_BASE"])
        elif name == "gocardless" and cfg["GOCARDLESS_ACCESS_TOKEN"] and cfg["GOCARDLESS_WEBHOOK_SECRET"]:
            from .gocardless import GoCardlessGateway
            gateway = GoCardlessGateway(cfg["GOCARDLESS_ACCESS_TOKEN"], cfg["GOCARDLESS_WEBHOOK_SECRET"],
                                        cfg["GOCARDLESS_ENVIRONMENT"], cfg["GOCARDLESS_BASE_URL"])
        elif name == "twilio" and cfg["TWILIO_ACCOUNT_SID"] and cfg["TWILIO_AUTH_TOKEN"] and cfg["TWILIO_FROM"]:
            from .twilio import TwilioGateway
            gateway = TwilioGateway(cfg["TWILIO_ACCOUNT_SID"], cfg["TWILIO_AUTH_TOKEN"], cfg["TWILIO_FROM"],
                                    cfg["TWILIO_API_BASE"])
        cache[name] = gateway
    return cache[name]
