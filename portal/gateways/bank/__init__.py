"""Bank statement files in, plain transactions out (CONTRACT §8).

The formats French and European banks deliver, recognised from the content, never the file name:
camt.053 and camt.054 (ISO 20022, .001.02 to .001.08), CFONB 120, MT940 and OFX. Each reader
streams its file and yields `StatementLine`s; none touches the database. A file that cannot be
read raises `StatementError` naming the line or element at fault; the service then records nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, Iterator


class StatementError(ValueError):
    """The file cannot be read: `location` names the line ("line 12") or the element
    ("Stmt[1]/Ntry[3]/Amt") at fault, for the 4xx answer and the CLI."""

    def __init__(self, message: str, location: str | None = None):
        super().__init__(f"{location}: {message}" if location else message)
        self.message = message
        self.location = location


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


def read_statement(stream: BinaryIO) -> Statement:
    """Recognise the format from the first bytes of `stream` and return its reader.
    Raises StatementError when the content is none of the formats."""
    raise NotImplementedError  # the parsers' helper fills this in
