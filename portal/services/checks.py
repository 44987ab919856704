"""The ground floor of services: input checks that the API, the back-office forms and the CSV
imports share. Each returns the clean value or raises Invalid naming the field. Nothing here
touches the database or imports another service."""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global
from babel.numbers import get_territory_currencies

from ..domain.money import MoneyError, check_currency, parse_amount
from . import Invalid

REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,63}$")
#: a stored invoice number to look up: the creditor's own (REF) or a charges item's ("<REF>+F<n>")
NUMBER = re.compile(r"^(?=.{1,64}$)[A-Za-z0-9][A-Za-z0-9._/\-]*(?:\+F[0-9]{1,6})?$")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{2,}$")
# Characters no column can store: PostgreSQL text refuses NUL, and neither database takes the
# lone surrogates a JSON "\ud800" escape decodes to. Other control characters have no place in text fields.
UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Legal tender somewhere today. Babel knows more codes: XXX (no currency), XTS (testing), metals,
# fund units and withdrawn currencies such as FRF, none of which an invoice can be issued in.
CURRENCIES_IN_USE = frozenset(c for t in get_global("territory_currencies")
                              for c in get_territory_currencies(t, start_date=date.today(), tender=True))


def check_ref(value, field: str) -> str:
    if not isinstance(value, str) or not REF.fullmatch(value):  # match() would let "A1\n" through
        raise Invalid(f"{field} must be 1-64 letters, digits, '.', '_', '-' or '/', starting with a letter or digit", field)
    return value


def check_storable(value: str, field: str) -> str:
    if UNSTORABLE.search(value):
        raise Invalid(f"{field} contains control characters or invalid Unicode", field)
    return value


# Bidirectional overrides, embeddings, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E,
# U+200F, U+061C): in a name they reorder what the back office shows, so one name can pass for another.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# Letters that draw nothing (Hangul fillers, the braille blank); format characters (U+200B-U+200D,
# U+2060, U+FEFF...), spaces and marks with nothing to mark (variation selectors) by their category.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(c: str) -> bool:
    return c in BLANK_LETTERS or unicodedata.category(c) in ("Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me")


def check_name(value, field: str, max_len: int = 200) -> str:
    """A debtor's or creditor's name, as people see it in lists: required, storable, without
    bidirectional controls and not made only of characters that show nothing."""
    name = check_text(value, field, max_len)
    if BIDI_CONTROLS.search(name):
        raise Invalid(f"{field} contains bidirectional control characters (U+202A-U+202E, U+2066-U+2069, "
                      "U+200E, U+200F, U+061C)", field)
    if all(_invisible(c) for c in name):
        raise Invalid(f"{field} has no visible character", field)
    return name


def shown_field(name: str) -> str:
    """A field's name as an answer may repeat it: its unstorable characters as "?", 60 at most."""
    return UNSTORABLE.sub("?", name)[:60]


def has_unstorable(value) -> bool:
    """A string anywhere in a parsed JSON value (keys, nested objects and lists too) that no
    column can store. A loop, not recursion: a body nested as deep as the parser allows is fine."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def check_text(value, field: str, max_len: int, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} is required", field)
    if len(value) > max_len:
        raise Invalid(f"{field} is longer than {max_len} characters", field)
    return check_storable(value.strip(), field)


def check_date(value, field: str) -> date:
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise Invalid(f"{field} must be an ISO date (YYYY-MM-DD)", field)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{field} is not a valid date", field) from None
    if not date(1990, 1, 1) <= parsed <= date(2199, 12, 31):
        raise Invalid(f"{field} is out of range", field)
    return parsed


def amount_of(value, currency: str, field: str = "amount") -> int:
    try:
        return parse_amount(value, currency)
    except MoneyError as e:
        raise Invalid(str(e), field) from None


def currency_of(value, field: str = "currency") -> str:
    try:
        code = check_currency(value)
    except MoneyError as e:
        raise Invalid(str(e), field) from None
    if code not in CURRENCIES_IN_USE:
        raise Invalid(f"{code} is not a currency in use today", field)
    return code


def check_email(value, field="email") -> str:
    if (not isinstance(value, str) or not EMAIL.match(value.strip()) or len(value) > 254
            or UNSTORABLE.search(value)):
        raise Invalid("a valid e-mail address is required", field)
    return value.strip()


def check_timezone(value) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise Invalid(f"unknown time zone {value!r}", "timezone") from None
    return value


ADDRESS_LINES, ADDRESS_LINE_LEN = 6, 38  # NF Z10-011: what a window envelope and La Poste read


def check_address(value, field: str = "address") -> str | None:
    """A postal address for letters: 1 to 6 non-empty lines of at most 38 characters, "\\n"-separated
    (CRLF accepted); None or "" clears it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid("must be text, lines separated by \\n", field)
    lines = [" ".join(line.split()) for line in check_storable(value.replace("\r\n", "\n"), field).split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return None
    if len(lines) > ADDRESS_LINES:
        raise Invalid(f"at most {ADDRESS_LINES} lines", field)
    for n, line in enumerate(lines, 1):
        if len(line) > ADDRESS_LINE_LEN:
            raise Invalid(f"line {n} has {len(line)} characters, at most {ADDRESS_LINE_LEN}", field)
    return "\n".join(lines)
