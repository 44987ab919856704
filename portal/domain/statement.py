"""Statement of account for one debtor, one currency and a period: the rules, no database.

Amounts are integer minor units. A debit raises what the debtor owes (an invoice, money taken
back by a refund or chargeback), a credit lowers it (a payment, a credit note). Everything dated
before the period folds into the opening balance; what is dated after it is left out, so the
closing balance is the balance at the end of the period:

    closing = opening + total debits - total credits
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Hashable, Iterable, Sequence

from .ageing import BUCKETS, aged_balance

#: Same-day order: what is owed first, then what paid it, then what took a payment back.
KIND_RANK = {"invoice": 0, "charges": 0, "payment": 1, "credit": 1, "discount": 1, "refund": 2, "chargeback": 2, "failed": 2}


@dataclass(frozen=True)
class Entry:
    day: date
    #: invoice | charges (late-payment charges claimed on invoice `label`) | payment | credit (credit note) | refund | chargeback | failed (direct debit returned)
    kind: str
    #: the invoice number, the payment's reference
    label: str
    debit: int = 0
    credit: int = 0
    #: extra detail for the description, e.g. the payment provider
    note: str = ""


@dataclass(frozen=True)
class Row(Entry):
    #: the running balance after this entry
    balance: int = 0


@dataclass
class Statement:
    start: date
    end: date
    opening: int
    rows: list[Row]
    closing: int
    total_debit: int
    total_credit: int
    #: open items at `end` by days past due (portal/domain/ageing.py buckets)
    ageing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    #: money received by `end` that no invoice took: ageing total - unallocated = closing
    unallocated: int = 0

    @property
    def aged_total(self) -> int:
        return sum(self.ageing.values())


def sort_key(entry: Entry) -> tuple:
    return entry.day, KIND_RANK.get(entry.kind, 1)


def build(entries: Iterable[Entry], start: date, end: date,
          open_items: Sequence[tuple[date, int]] = ()) -> Statement:
    """The statement for [start, end] (both inclusive). `open_items`: (due date, outstanding at
    `end`) of the invoices issued by `end`, for the ageing at `end`."""
    if start > end:
        raise ValueError("start after end")
    ordered = sorted(entries, key=sort_key)  # stable: the caller's order breaks the remaining ties
    for e in ordered:
        _check(e)
    opening = sum(e.debit - e.credit for e in ordered if e.day < start)
    rows: list[Row] = []
    running, debit, credit = opening, 0, 0
    for e in ordered:
        if start <= e.day <= end:
            running += e.debit - e.credit
            debit += e.debit
            credit += e.credit
            rows.append(Row(e.day, e.kind, e.label, e.debit, e.credit, e.note, running))
    closing = opening + debit - credit
    ageing = aged_balance([(due, amount) for due, amount in open_items if amount > 0], end)
    aged = sum(ageing.values())
    return Statement(start, end, opening, rows, closing, debit, credit, ageing, aged - closing)


def _check(e: Entry) -> None:
    if not isinstance(e.debit, int) or not isinstance(e.credit, int) or e.debit < 0 or e.credit < 0:
        raise ValueError(f"amounts are non-negative integers in minor units: {e!r}")


def net_allocations(amount: int, allocations: Sequence[tuple[Hashable, int]], reversed_total: int) -> dict:
    """What each allocation of a payment still pays after `reversed_total` was taken back, by the
    ledger's rule (portal/services/ledger.py::reverse_payment): the unallocated credit goes
    first, then the allocations, last first. `allocations`: (key, amount) in the order made."""
    left = dict(allocations)
    credit = amount - sum(a for _, a in allocations)
    rest = max(0, reversed_total - max(0, credit))
    for key, part in reversed(allocations):
        if rest <= 0:
            break
        take = min(rest, part)
        left[key] = part - take
        rest -= take
    return left


def outstanding_at(invoices: Sequence[tuple[Hashable, date, int]],
                   payments: Sequence[tuple[int, Sequence[tuple[Hashable, int]], int]]) -> list[tuple[date, int]]:
    """(due date, outstanding) per invoice, given the invoices (key, due date, amount) and the
    payments received by then (amount, allocations, amount reversed by then)."""
    paid: dict = {}
    for amount, allocations, reversed_total in payments:
        for key, part in net_allocations(amount, allocations, reversed_total).items():
            paid[key] = paid.get(key, 0) + part
    return [(due, max(0, amount - paid.get(key, 0))) for key, due, amount in invoices]
