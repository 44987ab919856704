"""How a debtor pays: average days late and the share paid on time over its fully paid invoices,
and whether that is getting better. Pure arithmetic on totals the SQL layer aggregates.

Days late of one invoice = the day its balance reached zero − its due date, never below zero (an
early payment is on time, not credit against another invoice's delay: "days beyond terms").
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class PayerStats:
    #: fully paid invoices counted
    invoices_paid: int = 0
    #: sum of their days late (each at least zero)
    days_late_total: int = 0
    #: how many were paid on or before their due date
    paid_on_time: int = 0

    @property
    def average_days_late(self) -> Decimal | None:
        """days_late_total / invoices_paid, one decimal, half up; None when nothing was paid."""
        if not self.invoices_paid:
            return None
        return (Decimal(self.days_late_total) / self.invoices_paid).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def paid_on_time_share(self) -> Decimal | None:
        """paid_on_time / invoices_paid, two decimals, half up ("0.75"); None when nothing was paid."""
        if not self.invoices_paid:
            return None
        return (Decimal(self.paid_on_time) / self.invoices_paid).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def as_json(self) -> dict:
        """CONTRACT §4 `payer`: the average a JSON number (a duration, like dso_days), the share a
        decimal string, both null when no invoice was paid."""
        average, share = self.average_days_late, self.paid_on_time_share
        return {"average_days_late": None if average is None else float(average),
                "paid_on_time_share": None if share is None else str(share),
                "invoices_paid": self.invoices_paid}


def shift_days(average: Decimal | None) -> int:
    """The whole days a forecast moves a due date by: the average rounded half up, 0 for none."""
    if average is None:
        return 0
    return int(average.quantize(Decimal("1"), ROUND_HALF_UP))


#: the trend's words
BETTER, WORSE, STEADY = "better", "worse", "steady"


def trend(recent: PayerStats, before: PayerStats) -> str | None:
    """Recent months against the months before: fewer days late on average is better. None
    when either period has no paid invoice (nothing to compare)."""
    a, b = recent.average_days_late, before.average_days_late
    if a is None or b is None:
        return None
    return BETTER if a < b else WORSE if a > b else STEADY
