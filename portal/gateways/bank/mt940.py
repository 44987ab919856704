"""MT940 (SWIFT customer statement) with the `mt-940` library: :25: account, :60F:/:62F: balances,
:61: statement lines, :86: details. The :86: field has no single layout: French and German banks
use the ?NN sub-fields (?20-?29 and ?60-?63 remittance, ?32/?33 the other party's name, ?31 its
account), others the /KEYWORD/ style (/NAME/, /REMI/, /EREF/, /IBAN/...); anything else is kept
whole as remittance.
"""
from __future__ import annotations

import re
from datetime import date
from typing import BinaryIO, Iterator

import mt940

from .base import Identities, StatementError, StatementLine, joined, minor_units

# :61: value date YYMMDD, optional entry date MMDD, [R]C/[R]D, optional funds code, amount with a comma
_LINE_61 = re.compile(r"^:61:[0-9]{6}([0-9]{4})?R?[CD][A-Z]?[0-9]+,[0-9]*")
_SUBFIELD = re.compile(r"\?([0-9]{2})")
_KEYWORDS = ("NAME", "REMI", "EREF", "MREF", "CRED", "IBAN", "BIC", "ORDP", "BENM", "PURP", "CDTRREFTP",
             "CDTRREF", "CSID", "ULTD", "ULTC", "SVCL", "ADDR", "TRCD", "RTRN", "ABWA", "ABWE", "KREF")
_KEYWORD = re.compile(r"/(" + "|".join(sorted(_KEYWORDS, key=len, reverse=True)) + r")/")
_RF = re.compile(r"\bRF[0-9]{2}[0-9A-Z]{1,21}\b")


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read(stream: BinaryIO) -> Iterator[StatementLine]:
    # MT940 files are a few statements long; the library reads a whole string
    text = _decoded(stream.read()).replace("\r\n", "\n").replace("\r", "\n")
    lines_61 = []
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith(":61:"):
            if not _LINE_61.match(line):
                raise StatementError("not a :61: statement line (YYMMDD[MMDD]C|D amount)", f"line {number}")
            lines_61.append(number)
        elif line.startswith(":25:") and not line[4:].strip():
            raise StatementError("an empty account (:25:)", f"line {number}")
    try:
        statements = mt940.parse_statements(text)
    except Exception as error:  # the library raises bare ValueErrors, KeyErrors... on a bad tag
        raise StatementError(f"not a readable MT940 file: {error}") from None
    identities = Identities()
    rank = 0
    for statement in statements:
        account = "".join((statement.data.get("account_identification") or "").split())
        for transaction in statement:
            where = f"line {lines_61[rank]}" if rank < len(lines_61) else "a :61: line"
            rank += 1
            if not account:
                raise StatementError("a statement line without its account (:25:)", where)
            yield _line(transaction.data, account, where, identities)


def _line(data: dict, account: str, where: str, identities: Identities) -> StatementLine:
    money = data.get("amount")
    currency = data.get("currency") or getattr(money, "currency", None)
    if money is None or not currency:
        raise StatementError("a statement line without an amount or a currency (:60F:)", where)
    amount = minor_units(str(money.amount), currency, where)
    booked = data.get("entry_date") or data.get("date")
    if booked is None:
        raise StatementError("a statement line without a date", where)
    details = _details(data.get("transaction_details") or "")
    credit = amount >= 0
    remittance = joined(details["remittance"], data.get("extra_details"))
    reference = (data.get("bank_reference") or "").strip() or None
    return StatementLine(
        account=account, booking_date=_plain(booked), value_date=_plain(data.get("date")),
        amount=amount, currency=currency, counterparty=details["name"],
        counterparty_account=details["iban"], remittance=remittance,
        structured_reference=details["structured"], bank_reference=reference,
        end_to_end_id=details["eref"],
        identity=identities(reference, account, _plain(booked), amount, currency, remittance))


def _plain(value):
    """The library's Date (a datetime.date subclass) as a plain date."""
    return None if value is None else date(value.year, value.month, value.day)


def _details(text: str) -> dict:
    """The :86: field read as ?NN sub-fields, /KEYWORD/ pairs, or kept whole."""
    flat = text.replace("\n", "")
    found = dict(name=None, iban=None, eref=None, structured=None, remittance=flat.strip())
    if _SUBFIELD.search(flat):
        parts: dict[str, list[str]] = {}
        pieces = _SUBFIELD.split(flat)
        for number, value in zip(pieces[1::2], pieces[2::2]):
            parts.setdefault(number, []).append(value)
        remittance = "".join(v for n in sorted(parts) if "20" <= n <= "29" or "60" <= n <= "63" for v in parts[n])
        found.update(
            name="".join(parts.get("32", []) + parts.get("33", [])).strip() or None,
            iban="".join(parts.get("31", [])).strip() or None,
            remittance=(remittance or "".join(parts.get("00", []))).strip())
    elif _KEYWORD.search(flat):
        pieces = _KEYWORD.split(flat)
        parts = {}
        for key, value in zip(pieces[1::2], pieces[2::2]):
            parts.setdefault(key, value.strip("/ "))
        remi = parts.get("REMI", "")
        remi = re.sub(r"^(USTD|STRD)/+", "", remi)
        name = parts.get("NAME") or re.sub(r"^/?NAME/", "", parts.get("ORDP", "")) or None
        found.update(name=name, iban=parts.get("IBAN"), eref=parts.get("EREF"),
                     structured=parts.get("CDTRREF"), remittance=remi or flat.strip())
    if found["structured"] is None:
        rf = _RF.search(found["remittance"])
        found["structured"] = rf[0] if rf else None
    if found["iban"]:
        found["iban"] = "".join(found["iban"].split()).upper()
    return found
