"""The group dashboard: each creditor of a user's group side by side, and the group consolidated
per currency. Amounts are never converted: a group with EUR and GBP entities has two totals.

Each entity's figures are the dashboard's own (reports.aged_balance; DSO and CEI by the formulas of
reports.summary). The consolidated DSO and CEI are not averages of the entities' figures: they are
computed, like an entity's, from the summed receivables and the summed sales of the same months."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, func, select

from ..domain import ageing
from ..extensions import db
from ..models import Creditor, Invoice
from . import reports


@dataclass
class Figures:
    """Receivables at a date, minor units of `currency`; the inputs of DSO and CEI kept so that
    entities of one currency add up into a consolidated row."""
    currency: str
    ageing: dict[str, int]
    #: invoices issued in each countback period (ageing.countback_periods), newest first
    sales: list[int]
    #: receivables at the CEI window's start, and invoices issued within it
    opening: int
    window_sales: int
    periods: list = field(repr=False, default_factory=list)

    @property
    def outstanding(self) -> int:
        return sum(self.ageing.values())

    @property
    def overdue(self) -> int:
        return self.outstanding - self.ageing["not_due"]

    @property
    def dso_days(self) -> Decimal:
        return ageing.dso_countback(self.outstanding, [ageing.Period((end - start).days, s)
                                                      for (start, end), s in zip(self.periods, self.sales)])

    @property
    def cei(self) -> Decimal | None:
        return ageing.cei(self.opening, self.window_sales, self.outstanding, self.ageing["not_due"])

    def __add__(self, other: Figures) -> Figures:
        assert self.currency == other.currency and self.periods == other.periods  # never converted
        return Figures(self.currency, {k: v + other.ageing[k] for k, v in self.ageing.items()},
                       [a + b for a, b in zip(self.sales, other.sales)], self.opening + other.opening,
                       self.window_sales + other.window_sales, self.periods)


@dataclass
class Entity:
    creditor: Creditor
    figures: Figures


@dataclass
class Consolidated:
    figures: Figures
    entities: int


def entity_figures(creditor: Creditor, as_of: date) -> Figures:
    """One creditor's receivables at `as_of`, in its currency (the dashboard's figures)."""
    periods = ageing.countback_periods(as_of)
    window_start, _ = ageing.cei_window(as_of)
    sales_cols = [func.coalesce(func.sum(case((and_(Invoice.kind == "invoice", Invoice.issue_date > start,
                                                    Invoice.issue_date <= end), Invoice.amount), else_=0)), 0)
                  for start, end in periods]
    window_sales = func.coalesce(func.sum(case((and_(Invoice.issue_date > window_start, Invoice.issue_date <= as_of),
                                                Invoice.amount), else_=0)), 0)
    row = db.session.execute(select(*sales_cols, window_sales).where(*reports._scope(creditor))).one()
    return Figures(currency=creditor.currency, ageing=reports.aged_balance(creditor, as_of),
                   sales=[int(s) for s in row[:-1]], opening=sum(reports.aged_balance(creditor, window_start).values()),
                   window_sales=int(row[-1]), periods=periods)


def overview(creditors: list[Creditor], as_of: date) -> dict:
    """{"entities": [Entity…] in the order given, "consolidated": [Consolidated…] one per currency,
    the currency most entities use first}."""
    entities = [Entity(c, entity_figures(c, as_of)) for c in creditors]
    by_currency: dict[str, Consolidated] = {}
    for e in entities:
        cur = e.figures.currency
        if cur in by_currency:
            by_currency[cur] = Consolidated(by_currency[cur].figures + e.figures, by_currency[cur].entities + 1)
        else:
            by_currency[cur] = Consolidated(e.figures, 1)
    consolidated = sorted(by_currency.values(), key=lambda c: (-c.entities, c.figures.currency))
    return {"as_of": as_of, "entities": entities, "consolidated": consolidated}
