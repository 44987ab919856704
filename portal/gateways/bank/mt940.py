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

from .base import RF_REFERENCE, Identities, StatementError, StatementLine, joined, minor_units

# :61: value date YYMMDD, optional entry date MMDD, [R]C/[R]D, optional funds code, amount with a comma
_LINE_61 = re.compile(r"^:61:[0-9]{6}([0-9]{4})?R?[CD][A-Z]?[0-9]+,[0-9]*")
_BALANCE = re.compile(r"^[CD][0-9]{6}[A-Z]{3}[0-9]+,[0-9]*\s*$")
_SUBFIELD = re.compile(r"\?([0-9]{2})")
_KEYWORDS = ("NAME", "REMI", "EREF", "MREF", "CRED", "IBAN", "BIC", "ORDP", "BENM", "PURP", "CDTRREFTP",
             "CDTRREF", "CSID", "ULTD", "ULTC", "SVCL", "ADDR", "TRCD", "RTRN", "ABWA", "ABWE", "KREF")
_KEYWORD = re.compile(r"/(" + "|".join(sorted(_KEYWORDS, key=len, reverse=True)) + r")/")


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read(stream: BinaryIO) -> Iterator[StatementLine]:
    # MT940 files are a few statements long; the library reads a whole string
    text = _decoded(stream.read()).replace("\r\n", "\n").replace("\r", "\n")
    lines_61 = _checked(text)
    try:
        # our own :86: reading: the library's ?NN post-processor mixes sub-fields ?31 and ?32
        statements = mt940.parse_statements(text, processors={"post_transaction_details": []})
    except Exception as error:  # the library raises bare ValueErrors, KeyErrors... on a bad tag
        raise StatementError(f"not a readable MT940 file: {_said(error)}", _where(error, text)) from None
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


def _checked(text: str) -> list[int]:
    """The line numbers of the :61: lines, once the lines the library would fail on vaguely (dates,
    amounts, balances) have been checked here, where the line number is known."""
    lines_61 = []
    for number, line in enumerate(text.split("\n"), 1):
        tag = line[:5] if line[4:5] == ":" else line[:4]
        if tag == ":61:":
            lines_61.append(number)
            found = _LINE_61.match(line)
            day = line[4:10]
        elif tag in (":60F:", ":60M:", ":62F:", ":62M:", ":64:", ":65:"):
            found = _BALANCE.match(line[len(tag):])
            day = line[len(tag) + 1:len(tag) + 7]
        elif tag == ":25:" and not line[4:].strip():
            raise StatementError("an empty account (:25:)", f"line {number}")
        else:
            continue
        if not found:
            shape = "YYMMDD[MMDD], C or D" if tag == ":61:" else "C or D, YYMMDD, the currency"
            raise StatementError(f"not a {tag} line ({shape}, then an amount like 1234,56)", f"line {number}")
        try:
            date(2000 + int(day[:2]), int(day[2:4]), int(day[4:6]))
        except ValueError:
            raise StatementError(f"{tag} has no valid date YYMMDD: {day!r}", f"line {number}") from None
    return lines_61


def _said(error: Exception) -> str:
    return str(error.args[0] if error.args else error).splitlines()[0]


def _where(error: Exception, text: str) -> str | None:
    """The line holding the text the library quotes in its error, where it quotes one."""
    for arg in error.args:
        if isinstance(arg, str) and len(arg) >= 4:
            for number, line in enumerate(text.split("\n"), 1):
                if arg in line:
                    return f"line {number}"
    return None


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
        remittance = _continued(v for n in sorted(parts) if "20" <= n <= "29" or "60" <= n <= "63" for v in parts[n])
        found.update(
            name=_continued(parts.get("32", []) + parts.get("33", [])).strip() or None,
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
        rf = RF_REFERENCE.search(found["remittance"])
        found["structured"] = rf[0] if rf else None
    if found["iban"]:
        found["iban"] = "".join(found["iban"].split()).upper()
    return found


def _continued(fields) -> str:
    """?NN sub-fields hold 27 characters: a full one runs on into the next, a shorter one ends a word."""
    out = ""
    for value in fields:
        out += value if not out or len(previous) >= 27 else " " + value.lstrip()
        previous = value
    return out
