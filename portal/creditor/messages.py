"""The services' refusals, which speak English to API clients, said again in the creditor's
language for the back office's forms."""
from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext

from ..services import Conflict, Invalid

SERVICE_MESSAGES = {
    "offset_days must be a whole number of days": lazy_gettext("Enter a whole number of days."),
    "offset_days must be between -90 and 365": lazy_gettext("Enter a number of days between -90 and 365."),
    "steps must stay in order: each later than the one before": lazy_gettext(
        "Steps must stay in order: each one later than the one before and earlier than the one after."),
    "channel must be one of email, sms, letter, call": lazy_gettext("Choose e-mail, SMS, letter or phone call."),
    "subject is required (200 characters at most)": lazy_gettext(
        "A subject is required (200 characters at most)."),
    "text is required (5000 characters at most)": lazy_gettext("A text is required (5000 characters at most)."),
    "a rate in percent is required, like 2.15": lazy_gettext("Enter a rate in percent, like 2.15."),
    "a rate in percent between 0 and 100, two decimals at most": lazy_gettext(
        "Enter a rate in percent between 0 and 100, with two decimals at most."),
    "a whole number of days is required": lazy_gettext("Enter a whole number of days."),
    "between 1 and 90 days": lazy_gettext("Enter between 1 and 90 days."),
}


# A debtor's postal address and kind (services/checks.check_address, ledger.check_debtor).
ADDRESS_MESSAGES = {
    "at most 6 lines": lazy_gettext("An address has 6 lines at most."),
    "address contains control characters or invalid Unicode": lazy_gettext(
        "The address contains characters that cannot be printed."),
    "kind must be one of business, public, consumer": lazy_gettext("Choose the kind of debtor."),
}
ADDRESS_LINE = re.compile(r"line (\d+) has (\d+) characters, at most (\d+)")


def message(e: Invalid | Conflict) -> str:
    if e.message in SERVICE_MESSAGES:
        return str(SERVICE_MESSAGES[e.message])
    if e.message in ADDRESS_MESSAGES:
        return str(ADDRESS_MESSAGES[e.message])
    if m := ADDRESS_LINE.fullmatch(e.message):
        return _("Line %(line)s has %(count)s characters: %(most)s at most.", line=m[1], count=m[2], most=m[3])
    if e.message.startswith("template error: "):
        return _("This text cannot be used: %(detail)s", detail=e.message.removeprefix("template error: "))
    return e.message
