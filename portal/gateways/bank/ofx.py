"""OFX bank and card statements, v1 (SGML) and v2 (XML), parsed by `ofxtools` into an element tree.

The values are read as the bank wrote them rather than through ofxtools' typed models: DTPOSTED's
date is the bank's calendar day (the models move it to UTC, which can change the day), and a
TRNAMT with a decimal comma, as some French banks send, stays readable.
"""
from __future__ import annotations

import io
import re
from datetime import date
from typing import BinaryIO, Iterator

from ofxtools.Parser import OFXTree

from .base import RF_REFERENCE, Identities, StatementError, StatementLine, joined, minor_units

_STATEMENTS = ("BANKMSGSRSV1/STMTTRNRS/STMTRS", "CREDITCARDMSGSRSV1/CCSTMTTRNRS/CCSTMTRS")


def read(stream: BinaryIO) -> Iterator[StatementLine]:
    data = stream.read()
    if b"</OFX>" not in data[-4096:].upper():
        raise StatementError("no closing </OFX>: a truncated file")
    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))  # ofxtools seeks back over the header
    except Exception as error:  # ofxtools raises its ParseError, HeaderError or a bare ValueError
        raise StatementError(f"not a readable OFX file: {error}") from None
    root = tree.getroot()
    identities = Identities()
    found = False
    for path in _STATEMENTS:
        for number, stmtrs in enumerate(root.findall(path), 1):
            found = True
            yield from _statement(stmtrs, f"{path.rsplit('/', 1)[1]}[{number}]", identities)
    if not found:
        raise StatementError("an OFX file without a bank or card statement (STMTRS)")


def _statement(stmtrs, where: str, identities: Identities) -> Iterator[StatementLine]:
    account = _text(stmtrs, "BANKACCTFROM/ACCTID") or _text(stmtrs, "CCACCTFROM/ACCTID")
    if not account:
        raise StatementError("no account (BANKACCTFROM/ACCTID)", where)
    account = "".join(account.split())
    default_currency = _text(stmtrs, "CURDEF")
    for number, trn in enumerate(stmtrs.findall("BANKTRANLIST/STMTTRN"), 1):
        here = f"{where}/STMTTRN[{number}]"
        currency = _text(trn, "CURRENCY/CURSYM") or default_currency
        if not currency:
            raise StatementError("no currency (CURDEF)", here)
        amount = minor_units(_text(trn, "TRNAMT"), currency, f"{here}/TRNAMT")
        booked = _date(_text(trn, "DTPOSTED"), f"{here}/DTPOSTED")
        if booked is None:
            raise StatementError("no DTPOSTED", here)
        reference = _text(trn, "FITID")
        remittance = joined(_text(trn, "MEMO"))
        name = _text(trn, "NAME") or _text(trn, "PAYEE/NAME")
        iban = _text(trn, "BANKACCTTO/ACCTID")
        rf = RF_REFERENCE.search(remittance)
        # some banks put the whole label in NAME and nothing in MEMO: keep it readable for matching
        label = remittance or joined(name)
        yield StatementLine(
            account=account, booking_date=booked, value_date=_date(_text(trn, "DTAVAIL"), f"{here}/DTAVAIL"),
            amount=amount, currency=currency, counterparty=name,
            counterparty_account="".join(iban.split()) if iban else None,
            remittance=label, structured_reference=rf[0] if rf else None,
            bank_reference=reference, end_to_end_id=None,
            identity=identities(reference, account, booked, amount, currency, label))


def _text(element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return " ".join(found.text.split()) or None


def _date(text: str | None, where: str) -> date | None:
    """YYYYMMDD[HHMMSS[.XXX]][TZ]: the day as the bank wrote it."""
    if text is None:
        return None
    try:
        if not re.match(r"^[0-9]{8}", text):
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise StatementError(f"not an OFX date: {text!r}", where) from None
