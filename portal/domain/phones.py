"""Phone numbers for SMS: E.164 from what a creditor types, mobile or not, and where the number
rings when it is in a French overseas department or collectivity (its clock and its holidays).

Everything here is read from Google's numbering metadata (phonenumbers); the overseas table only
says which IANA zone and which `holidays.France` subdivision go with a territory.
"""
from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, ValidationResult

DEFAULT_REGION = "FR"
MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


@dataclass(frozen=True)
class Territory:
    region: str          # ISO 3166 code as phonenumbers gives it
    name: str            # in French, as the back office shows it
    time_zone: str       # IANA
    subdivision: str     # holidays.France(subdiv=...)


# Overseas departments and regions (DROM) and collectivities (COM, Nouvelle-Calédonie). Polynésie
# spans three zones; Tahiti's is where nearly everyone lives.
TERRITORIES = {t.region: t for t in (
    Territory("GP", "Guadeloupe", "America/Guadeloupe", "971"),
    Territory("MQ", "Martinique", "America/Martinique", "972"),
    Territory("GF", "Guyane", "America/Cayenne", "973"),
    Territory("RE", "La Réunion", "Indian/Reunion", "974"),
    Territory("YT", "Mayotte", "Indian/Mayotte", "976"),
    Territory("PM", "Saint-Pierre-et-Miquelon", "America/Miquelon", "PM"),
    Territory("BL", "Saint-Barthélemy", "America/St_Barthelemy", "BL"),
    Territory("MF", "Saint-Martin", "America/Marigot", "MF"),
    Territory("PF", "Polynésie française", "Pacific/Tahiti", "PF"),
    Territory("NC", "Nouvelle-Calédonie", "Pacific/Noumea", "NC"),
    Territory("WF", "Wallis-et-Futuna", "Pacific/Wallis", "WF"),
)}
# Overseas numbers belong to the French national plan too: from France, "0690 12 34 56" is a
# Guadeloupe mobile. phonenumbers reads a national number for one region only, so these are tried
# after FR (Saint-Barthélemy and Saint-Martin share Guadeloupe's numbers).
NATIONAL_PLAN = ("GP", "MQ", "GF", "RE", "YT", "PM")


class InvalidPhone(ValueError):
    """A number we cannot send to. `reason` is stable (for translated messages), the text is English."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(raw, region)
    except NumberParseException as e:
        if e.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhone("country_code", f"{raw!r}: unknown country code (write it as +33 6 12 34 56 78)") from None
        if e.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
            raise InvalidPhone("too_short", f"{raw!r}: too short for a phone number") from None
        if e.error_type == NumberParseException.TOO_LONG:
            raise InvalidPhone("too_long", f"{raw!r}: too long for a phone number") from None
        raise InvalidPhone("not_a_number", f"{raw!r} is not a phone number") from None


def parse(raw: str, default_region: str = DEFAULT_REGION) -> phonenumbers.PhoneNumber:
    """The number `raw` denotes: international (+33…, 0033…) or national in `default_region`
    ("06 12 34 56 78"), or in an overseas department when dialled from France ("0690 …")."""
    raw = (raw or "").strip()
    if not raw:
        raise InvalidPhone("empty", "no phone number given")
    number = _parse(raw, default_region)
    if phonenumbers.is_valid_number(number):
        return number
    if default_region == "FR" and not raw.startswith("+") and not raw.startswith("00"):
        for region in NATIONAL_PLAN:
            candidate = _parse(raw, region)
            if phonenumbers.is_valid_number(candidate):
                return candidate
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidPhone("too_short", f"{raw!r}: too short for a phone number in this country")
    if possible == ValidationResult.TOO_LONG:
        raise InvalidPhone("too_long", f"{raw!r}: too long for a phone number in this country")
    raise InvalidPhone("invalid", f"{raw!r} is not an allocated phone number")


def to_e164(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """`raw` written as E.164 ("+33612345678"), the form that is stored and sent to Twilio."""
    return phonenumbers.format_number(parse(raw, default_region), PhoneNumberFormat.E164)


def is_mobile(number: str) -> bool:
    """Whether an SMS can reach it: a mobile number, or one of a plan that does not tell (the US)."""
    return phonenumbers.number_type(parse(number)) in MOBILE_TYPES


def display(number: str) -> str:
    """The number as people write it: national in France ("06 12 34 56 78"), international elsewhere."""
    parsed = parse(number)
    fmt = PhoneNumberFormat.NATIONAL if parsed.country_code == 33 else PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, fmt)


def territories(number: str) -> tuple[Territory, ...]:
    """The overseas territories the number may ring in, most likely first; () in mainland France
    or abroad. A Guadeloupe mobile may as well be in Saint-Barthélemy or Saint-Martin: numbering
    does not tell them apart (same clock, different holidays)."""
    parsed = parse(number)
    first = phonenumbers.region_code_for_number(parsed)
    regions = [first] + [r for r in phonenumbers.region_codes_for_country_code(parsed.country_code)
                         if r != first and phonenumbers.is_valid_number_for_region(parsed, r)]
    return tuple(TERRITORIES[r] for r in regions if r in TERRITORIES)


def overseas(number: str) -> Territory | None:
    """The overseas territory of the number, or None (mainland France, or abroad)."""
    found = territories(number)
    return found[0] if found else None


def territory_of_zone(time_zone: str) -> Territory | None:
    """The overseas territory whose clock `time_zone` is (a creditor based in La Réunion)."""
    return next((t for t in TERRITORIES.values() if t.time_zone == time_zone), None)


def sending_clock(number: str, creditor_time_zone: str) -> tuple[str, tuple[str, ...]]:
    """(IANA zone, holidays.France subdivisions) that decide when an SMS to `number` may go: the
    debtor's own when the number is overseas (every territory it may be in, so that none of their
    holidays is missed), otherwise the creditor's (and its territory's holidays if overseas)."""
    found = territories(number)
    if found:
        return found[0].time_zone, tuple(t.subdivision for t in found)
    home = territory_of_zone(creditor_time_zone)
    return creditor_time_zone, ((home.subdivision,) if home else ())
