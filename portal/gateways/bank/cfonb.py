"""CFONB 120, the French fixed-width account statement ("relevé de compte 120 caractères").

Layout from the CFONB brochure "Relevé de compte sur support informatique" (July 2004), as also
tabulated in the `cfonb` package's FORMAT.md (hex.pm/packages/cfonb). Positions are 1-based:
  all records   1-2 record code, 3-7 bank, 8-11 internal operation code, 12-16 branch,
                17-19 currency, 20 number of decimals, 22-32 account number
  01 / 07       35-40 balance date DDMMYY, 91-104 balance
  04 movement   33-34 interbank operation code, 35-40 booking date, 43-48 value date,
                49-79 label, 82-88 entry number, 91-104 amount, 105-120 entry reference
  05 complement 35-40 booking date, 46-48 qualifier (LIB, NPY, NBE, RCN...), 49-118 text
Amounts are 14 characters whose last one carries the sign and the last digit:
'{' 'A'..'I' = +0..+9, '}' 'J'..'R' = -0..-9.
Banks send the records one per line or back to back with no line break at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO, Iterator

from portal.domain.money import MoneyError, exponent, to_decimal_string

from .base import RF_REFERENCE, Identities, StatementError, StatementLine, joined

RECORD = 120
_CODES = ("01", "04", "05", "07")
_POSITIVE = {c: i for i, c in enumerate("{ABCDEFGHI")}
_NEGATIVE = {c: i for i, c in enumerate("}JKLMNOPQR")}
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit would take '²' of a latin-1 file
#: 05 qualifiers whose text is the payer's or the bank's label (qualifiers after the CFONB's "Evolutions du
#: relevé de compte 120 caractères pour les opérations de virement", August 2007)
_REMITTANCE = {"LIB", "LCC", "LC2", "LCS"}
#: shortest acceptable length once trailing blanks were trimmed by some tool on the way
_SHORTEST = {"01": 104, "04": 104, "05": 48, "07": 104}


def looks_like(head: bytes) -> bool:
    """The head of a CFONB 120 file: a first record 01 (bank, branch, currency, decimals) of 120
    characters, alone on its line (trailing blanks perhaps trimmed) or followed by the next record."""
    text = head.lstrip(b"\xef\xbb\xbf")
    if not re.match(rb"01[0-9]{5}.{4}[0-9]{5}[A-Z]{3}[0-9]", text):
        return False
    parts = re.split(rb"\r\n|\r|\n", text, maxsplit=1)
    if len(parts) > 1:
        return _SHORTEST["01"] <= len(parts[0]) <= RECORD
    return len(text) == RECORD or text[RECORD:RECORD + 2] in (b"01", b"04", b"05", b"07")


def _records(stream: BinaryIO) -> Iterator[tuple[str, str]]:
    """(location, record) in file order: "line N", N counting records when the file has no line breaks."""
    first = stream.peek(RECORD + 2)[:RECORD + 2] if hasattr(stream, "peek") else b""
    if b"\n" in first or b"\r" in first:
        for number, raw in enumerate(stream, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            yield f"line {number}", text
        return
    number = 0
    while True:
        raw = stream.read(RECORD)
        if not raw:
            return
        number += 1
        if not raw.strip(b"\r\n\x1a "):  # an end-of-file mark or a final newline
            return
        if len(raw) < RECORD:
            raise StatementError(f"truncated: {len(raw)} characters instead of {RECORD}", f"line {number}")
        yield f"line {number}", raw.decode("latin-1")


def _amount(record: str, decimals: int, currency: str, where: str) -> int:
    zone = record[90:104]
    last = zone[-1:]
    sign = 1 if last in _POSITIVE else -1 if last in _NEGATIVE else 0
    if not sign or not _DIGITS.fullmatch(zone[:-1]):
        raise StatementError(f"not a CFONB amount: {zone!r} (positions 91-104)", where)
    units = int(zone[:-1]) * 10 + (_POSITIVE.get(last) if sign > 0 else _NEGATIVE[last])
    places = exponent(currency)
    if decimals > places:
        units, rest = divmod(units, 10 ** (decimals - places))
        if rest:
            raise StatementError(f"{currency} amounts have at most {places} decimals", where)
    return sign * units * 10 ** max(places - decimals, 0)


def _date(text: str, where: str, what: str, optional: bool = False) -> date | None:
    if optional and text.strip(" 0") == "":
        return None
    try:
        if not _DIGITS.fullmatch(text):
            raise ValueError
        year = int(text[4:6])
        return date(2000 + year if year < 80 else 1900 + year, int(text[2:4]), int(text[0:2]))
    except ValueError:
        raise StatementError(f"not a date (DDMMYY): {text!r} ({what})", where) from None


@dataclass
class _Movement:
    where: str
    account: str
    booking_date: date
    value_date: date | None
    amount: int
    currency: str
    label: str
    reference: str | None
    texts: list[str] = field(default_factory=list)
    payer: str | None = None
    payee: str | None = None
    end_to_end: str | None = None


@dataclass
class _Account:
    where: str
    currency: str
    opening: int
    moved: int = 0


def read(stream: BinaryIO) -> Iterator[StatementLine]:
    identities = Identities()
    accounts: dict[tuple[str, str], _Account] = {}
    pending: _Movement | None = None
    for where, record in _records(stream):
        code = record[:2]
        if code not in _CODES:
            raise StatementError(f"unknown record code {code!r} (CFONB 120 has 01, 04, 05, 07)", where)
        if len(record) > RECORD or len(record.rstrip()) < _SHORTEST[code]:
            raise StatementError(f"a record of {len(record)} characters; CFONB 120 records have {RECORD}", where)
        record = record.ljust(RECORD)
        account = f"{record[2:7]}{record[11:16]}{record[21:32]}".replace(" ", "")
        if code == "05":  # its currency and decimals repeat the movement's: some banks leave them blank
            if pending is None or pending.account != account:
                raise StatementError("a complement (05) that follows no movement (04) of its account", where)
            _complement(pending, record)
            continue
        currency = record[16:19]
        try:
            exponent(currency)
        except MoneyError:
            raise StatementError(f"unknown currency {currency!r} (positions 17-19)", where) from None
        if not _DIGITS.fullmatch(record[19]):
            raise StatementError(f"number of decimals {record[19]!r} is not a digit (position 20)", where)
        decimals = int(record[19])
        key = (account, currency)  # an account held in several currencies has a balance in each
        if pending is not None:
            yield _line(pending, identities)
            pending = None
        if code == "01":
            if key in accounts:
                raise StatementError(f"account {account}: a second old balance (01) before its new balance (07)", where)
            _date(record[34:40], where, "balance date, positions 35-40")
            accounts[key] = _Account(where, currency, _amount(record, decimals, currency, where))
        elif code == "04":
            if key not in accounts:
                raise StatementError(f"account {account}: a movement (04) before its old balance (01)", where)
            pending = _Movement(
                where, account, _date(record[34:40], where, "booking date, positions 35-40"),
                _date(record[42:48], where, "value date, positions 43-48", optional=True),
                _amount(record, decimals, currency, where), currency, record[48:79].strip(),
                record[104:120].strip() or None)
            accounts[key].moved += pending.amount
        else:
            opened = accounts.pop(key, None)
            if opened is None:
                raise StatementError(f"account {account}: a new balance (07) without an old balance (01)", where)
            _date(record[34:40], where, "balance date, positions 35-40")
            closing = _amount(record, decimals, currency, where)
            if opened.opening + opened.moved != closing:
                raise StatementError(
                    f"account {account}: the old balance ({to_decimal_string(opened.opening, currency)}) plus the "
                    f"movements ({to_decimal_string(opened.moved, currency)}) do not make the new balance "
                    f"({to_decimal_string(closing, currency)}): "
                    "a truncated or altered file", where)
    if pending is not None:
        yield _line(pending, identities)
    if accounts:
        (account, currency), opened = next(iter(accounts.items()))
        raise StatementError(f"account {account} ({currency}): the file ends before the new balance (07) "
                             f"of the old balance at {opened.where}: a truncated file")


def _complement(movement: _Movement, record: str) -> None:
    qualifier, text = record[45:48], record[48:118].strip()
    if not text:
        return
    if qualifier == "NPY":
        movement.payer = joined(movement.payer, text)
    elif qualifier == "NBE":
        movement.payee = joined(movement.payee, text)
    elif qualifier == "RCN":  # the payer's reference (SEPA EndToEndId, 35 characters), then the purpose
        reference = text[:35].strip()
        movement.end_to_end = reference
        if reference.upper() != "NOTPROVIDED":
            movement.texts.append(reference)
    elif qualifier in _REMITTANCE:
        movement.texts.append(text)


def _line(movement: _Movement, identities: Identities) -> StatementLine:
    remittance = joined(movement.label, *movement.texts)
    structured = RF_REFERENCE.search(" ".join(movement.texts))
    counterparty = movement.payer if movement.amount >= 0 else movement.payee
    return StatementLine(
        account=movement.account, booking_date=movement.booking_date, value_date=movement.value_date,
        amount=movement.amount, currency=movement.currency, counterparty=counterparty or None,
        counterparty_account=None, remittance=remittance,
        structured_reference=structured[0] if structured else None, bank_reference=movement.reference,
        end_to_end_id=movement.end_to_end,
        identity=identities(movement.reference, movement.account, movement.booking_date, movement.amount,
                            movement.currency, remittance))
