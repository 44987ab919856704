"""Early-payment discount (CONTRACT §4, §10; the "3/10 n/30" of the trade): pure arithmetic.

The discount is a percentage of the invoice's amount, rounded half up to the minor unit, available
through its last day inclusive (the creditor's calendar day). While available, what the debtor
owes now is the balance less the discount; paid in full by that day, the discount settles the rest.
"""
from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal


def discount_amount(amount: int, percent: Decimal | None) -> int:
    """The discount on an invoice of `amount` minor units: 2 % of 100050 -> 2001."""
    if not percent:
        return 0
    return int((Decimal(amount) * Decimal(percent) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def available(until: date | None, today: date) -> bool:
    return until is not None and today <= until


def due_now(amount: int, balance: int, percent: Decimal | None, until: date | None, today: date) -> int:
    """What settles the invoice if paid today: the balance, less the discount while it is available.

    Never below zero (a part payment larger than the discounted amount leaves nothing to pay now)."""
    if balance <= 0 or not available(until, today):
        return max(balance, 0)
    return max(balance - discount_amount(amount, percent), 0)
