"""Scoring a bank credit against a creditor's open items (CONTRACT §7, §8): pure, explained.

`Book` holds what matching needs of one creditor's ledger, indexed in memory (open invoices by
id, by normalised number and by balance; debtors by name; what each debtor's last message asked
for). `match(credit, book)` decides one credit:

- **matched**: the remittance carries one of our RF references (debtor's or invoice's, with or
  without spaces) or names open invoice numbers of one debtor; the outcome lists the invoices
  in allocation order (a debtor reference: the invoices its last message asked for when the
  amount equals them, else oldest due first, disputed last). Applied by the service.
- **suggested**: no reference, but one debtor has an open invoice or a set of open invoices
  whose balances add up to the amount (bounded search), or the payer's name is close to one
  debtor's (rapidfuzz), or the amount equals a debtor's balance. Never applied until confirmed.
- **unmatched**: the rest. **ignored** with reason "payout": a Stripe or GoCardless payout.

Every outcome carries a `reason` (a short code) and a `score` in 0..100, and `explain` (human
text for the back office). No Flask, no SQLAlchemy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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


class Book:
    """One creditor's open items for matching, in one currency or several."""

    def __init__(self, invoices, debtors, asked: dict[int, tuple[int, ...]] | None = None):
        """`invoices`: iterable of OpenInvoice (open ones only); `debtors`: iterable of DebtorName;
        `asked`: debtor id -> invoice ids its last message asked for."""
        raise NotImplementedError  # the matching helper fills this in

    def settle(self, invoice_id: int, amount: int) -> None:
        """`amount` of that invoice was just paid (by an applied match): later credits of the same
        import see its new balance (gone from the book when nothing is left)."""
        raise NotImplementedError


def match(credit: Credit, book: Book) -> Outcome:
    raise NotImplementedError


def is_payout(counterparty: str | None, remittance: str) -> bool:
    """A Stripe or GoCardless payout: money already recorded from the provider's webhooks."""
    raise NotImplementedError
