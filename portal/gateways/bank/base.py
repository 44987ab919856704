"""The plain results every statement reader yields, and what they share: exact amounts and
identities. Re-exported by the package (portal.gateways.bank)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from portal.domain.money import MoneyError, exponent
from portal.gateways.results import UnusableFile


class StatementError(UnusableFile):
    """The statement cannot be read: `location` names the line ("line 12") or the element
    ("Stmt[1]/Ntry[3]/Amt") at fault."""

    @property
    def location(self) -> str | None:
        return self.where


@dataclass(frozen=True)
class StatementLine:
    """One booked transaction of one account."""
    #: the account it was booked on: compact IBAN where the file gives one, else the bank's
    #: account identifier as written (CFONB bank+branch+account, MT940 :25:, OFX ACCTID)
    account: str
    booking_date: date
    value_date: date | None
    #: minor units of `currency`; positive a credit (money in), negative a debit
    amount: int
    currency: str
    #: the other party's name: the payer of a credit, the payee of a debit; None when absent
    counterparty: str | None
    #: the other party's IBAN where given
    counterparty_account: str | None
    #: what the payer wrote (unstructured lines joined by a space) and the bank's label: the
    #: text matching reads for references and invoice numbers
    remittance: str
    #: a structured creditor reference (camt CdtrRefInf/Ref, an RF quoted in a structured field)
    structured_reference: str | None
    #: the bank's own reference of the entry (camt AcctSvcrRef, OFX FITID, the CFONB/MT940
    #: reference); None when the file has none
    bank_reference: str | None
    #: the payer's EndToEndId (often "NOTPROVIDED"): shown, never used alone as an identity
    end_to_end_id: str | None
    #: identity of the transaction within (creditor, account), stable between overlapping
    #: statements: "ref:" + bank_reference, else "hash:" + a hash of booking date, amount,
    #: currency, label and its rank among identical rows of that day in the file
    identity: str


@dataclass
class Statement:
    #: "camt.053", "camt.054", "cfonb120", "mt940" or "ofx"
    format: str
    #: consumed once, in file order; raises StatementError at the first unreadable part
    lines: Iterator[StatementLine]


#: an ISO 11649 creditor reference as banks print it, without spaces
RF_REFERENCE = re.compile(r"\bRF[0-9]{2}[0-9A-Z]{1,21}\b")
_DECIMAL = re.compile(r"^([+-]?)([0-9]+)(?:[.,]([0-9]*))?$")


def minor_units(text: str | None, currency: str, location: str) -> int:
    """'1200.50' or '1200,50' EUR -> 120050, exactly (never a float); StatementError at `location`."""
    found = _DECIMAL.match((text or "").strip())
    if not found:
        raise StatementError("not an amount", location)
    try:
        places = exponent(currency)
    except MoneyError:
        raise StatementError(f"unknown currency {currency!r}", location) from None
    sign, whole, frac = found[1], found[2], (found[3] or "").rstrip("0")
    if len(frac) > places:
        raise StatementError(f"{currency} amounts have at most {places} decimals", location)
    minor = int(whole) * 10**places + int(frac.ljust(places, "0") or "0")
    return -minor if sign == "-" else minor


class Identities:
    """The identity of each line of one file (StatementLine.identity).

    The bank's reference where there is one. Otherwise a hash of what the line says plus its rank
    among identical lines of the same day in this file: counted per identical key, not by position,
    so a later statement overlapping this one gives its lines the same identities."""

    def __init__(self):
        self._seen: dict[bytes, int] = {}

    def __call__(self, bank_reference: str | None, account: str, booking_date: date,
                 amount: int, currency: str, label: str) -> str:
        if bank_reference:
            return "ref:" + bank_reference
        key = "|".join((account, booking_date.isoformat(), str(amount), currency, " ".join(label.split())))
        digest = hashlib.sha256(key.encode()).digest()
        rank = self._seen.get(digest[:16], 0)
        self._seen[digest[:16]] = rank + 1
        return "hash:" + hashlib.sha256(f"{key}|{rank}".encode()).hexdigest()


def joined(*parts: str | None) -> str:
    """Text pieces joined by one space, blanks dropped."""
    return " ".join(" ".join(p.split()) for p in parts if p and p.strip())
