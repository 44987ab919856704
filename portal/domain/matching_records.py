"""The records bank matching (matching.py) takes and gives: a bank credit, an open invoice, a
debtor's name, and the outcome for one credit. Pure Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Credit:
    amount: int  # minor units, > 0
    currency: str
    booking_date: date
    counterparty: str | None
    remittance: str
    structured_reference: str | None = None


@dataclass(frozen=True)
class OpenInvoice:
    id: int
    debtor_id: int
    number: str
    balance: int  # minor units, > 0
    currency: str
    due_date: date
    disputed: bool = False


@dataclass(frozen=True)
class DebtorName:
    id: int
    name: str


@dataclass(frozen=True)
class Outcome:
    #: matched | suggested | unmatched | ignored
    status: str
    #: machine reason: invoice_reference, debtor_reference, invoice_numbers, exact_amount,
    #: invoice_set, payer_name, debtor_balance, payout, none
    reason: str
    score: int = 0
    debtor_id: int | None = None
    #: invoice ids in allocation order (may be empty for a debtor with credit left)
    invoice_ids: tuple[int, ...] = ()
    #: human explanation for the reconciliation screen (English; the screen translates reasons)
    explain: str = ""
