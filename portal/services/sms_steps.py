"""A plan step on the `sms` channel (CONTRACT §9): whether this debtor can get it by SMS (else it
goes by e-mail, and the back office is told why), the SMS itself, and when it may go.

The message is an ordinary outbox message with channel 'sms': `to_addr` the E.164 number,
`text_body` the SMS, `next_attempt_at` the next allowed instant (quiet hours: it waits, it is not
dropped). The sender (dunning_jobs/outbox_sms.py) hands it to Twilio.
"""
from __future__ import annotations

from datetime import date
from html import escape

from babel.dates import format_date
from flask import current_app

from .. import gateways
from ..domain import phones, quiet_hours, sms
from ..domain.money import format_money
from ..models import utcnow
from . import events

#: why a step meant for SMS went by e-mail (the event sms.fell_back), stable codes
NO_MOBILE, OPTED_OUT, NOT_CONFIGURED = "no_mobile", "opted_out", "not_configured"


def mobile_of(debtor) -> str | None:
    """The debtor's number in E.164 when an SMS can reach it (a mobile), else None."""
    try:
        number = phones.to_e164(debtor.phone or "")
        return number if phones.is_mobile(number) else None
    except phones.InvalidPhone:
        return None


def route(debtor) -> tuple[str | None, str | None]:
    """(number, None) when the step can go by SMS, else (None, why not)."""
    if gateways.sms() is None:
        return None, NOT_CONFIGURED
    if debtor.sms_opt_out:
        return None, OPTED_OUT
    number = mobile_of(debtor)
    return (number, None) if number else (None, NO_MOBILE)


def number_or_fall_back(creditor, debtor, step, day: date) -> str | None:
    """The number to text the step to, or None: the step goes by e-mail, recorded (sms.fell_back)
    so that the back office can say why the debtor did not get an SMS."""
    number, reason = route(debtor)
    if number is None:
        events.record("sms.fell_back", creditor_id=creditor.id, debtor_id=debtor.id, actor="system",
                      reason=reason, step=step.code, date=day.isoformat(),
                      to="email" if debtor.email else "letter")
    return number


def text(creditor, debtor, step, demand, invoices, short_url: str) -> str:
    """The SMS in the debtor's language: the amount asked, the earliest due date among the
    invoices, the creditor's name, the short portal link (≤ 2 segments, domain/sms.py)."""
    language = debtor.language or "fr"
    amount = format_money(demand.total, demand.currency, language)
    due = format_date(min(inv.due_date for inv in invoices), "medium", locale=language)
    sender = current_app.config.get("TWILIO_FROM") or ""
    return sms.compose(step.tone, language, creditor.name, amount, due, short_url,
                       invoice_ref=invoices[0].number if len(invoices) == 1 else None,
                       replies=sender.startswith("+"))  # a number (not a name) can receive STOP


def fill(message, creditor, debtor, step, demand, invoices, short_url: str) -> None:
    """Make a composed message the step's SMS: recipient, text, and the first instant it may go."""
    number = mobile_of(debtor)
    message.to_addr = number
    message.text_body = text(creditor, debtor, step, demand, invoices, short_url)
    message.html_body = f"<p>{escape(message.text_body)}</p>"
    message.next_attempt_at = quiet_hours.next_allowed(utcnow(), *phones.sending_clock(number, creditor.timezone))
