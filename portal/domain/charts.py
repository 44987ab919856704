"""Server-side charts: the geometry of simple SVG bar charts, as plain numbers.

Pure Python (no Flask, no database): the template turns these shapes into `<svg>` elements with
presentation attributes and CSS classes only, since the Content-Security-Policy forbids inline
styles and scripts. Values are integers (minor units, counts); coordinates are whole SVG user
units in a fixed viewBox, so the same figures always draw the same picture.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class Column:
    key: str
    value: int
    x: int
    y: int
    width: int
    height: int

    @property
    def centre(self) -> int:
        return self.x + self.width // 2


@dataclass(frozen=True)
class Tick:
    value: int
    y: int


@dataclass(frozen=True)
class ColumnChart:
    width: int
    height: int
    #: left edge of the plot (room for the tick labels) and the y of the baseline
    left: int
    baseline: int
    columns: tuple[Column, ...]
    ticks: tuple[Tick, ...]


def nice_step(maximum: int, count: int = 4) -> int:
    """The smallest step of the form 1, 2 or 5 x 10^n such that `count` steps reach `maximum`."""
    if maximum <= 0:
        return 1
    target = -(-maximum // count)  # ceil
    magnitude = 1
    while magnitude * 10 <= target:
        magnitude *= 10
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= target:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def column_chart(items: list[tuple[str, int]], *, width: int = 640, height: int = 240, left: int = 96,
                 top: int = 12, bottom: int = 36, gap: int = 16, ticks: int = 4) -> ColumnChart:
    """Vertical bars, one per (key, value), scaled to the largest value rounded up to a nice
    tick; negative values draw as empty bars. The bottom margin is left for the labels."""
    plot_h = height - top - bottom
    step = nice_step(max([v for _, v in items] + [0]), ticks)
    scale_max = step * ticks
    baseline = height - bottom
    n = max(len(items), 1)
    slot = (width - left) // n
    bar_w = max(slot - gap, 1)
    columns = []
    for i, (key, value) in enumerate(items):
        h = plot_h * max(value, 0) // scale_max
        columns.append(Column(key=key, value=value, x=left + i * slot + (slot - bar_w) // 2, y=baseline - h,
                              width=bar_w, height=h))
    tick_marks = tuple(Tick(value=step * k, y=baseline - plot_h * k // ticks) for k in range(ticks + 1))
    return ColumnChart(width=width, height=height, left=left, baseline=baseline, columns=tuple(columns),
                       ticks=tick_marks)


@dataclass(frozen=True)
class Row:
    key: str
    value: int
    y: int
    length: int


@dataclass(frozen=True)
class RowChart:
    width: int
    height: int
    left: int
    #: the length of a full bar (value == total)
    span: int
    bar_height: int
    rows: tuple[Row, ...]


def row_chart(items: list[tuple[str, int]], *, total: int | None = None, width: int = 640, left: int = 200,
              right: int = 80, bar_height: int = 24, gap: int = 12) -> RowChart:
    """Horizontal bars, one per (key, value), as a share of `total` (default: the largest
    value): a funnel such as links issued -> opened -> paid. Room is left on the left for the
    labels and on the right for the figures."""
    full = total if total is not None else max([v for _, v in items] + [0])
    span = width - left - right
    rows = []
    for i, (key, value) in enumerate(items):
        length = span * min(max(value, 0), full) // full if full > 0 else 0
        rows.append(Row(key=key, value=value, y=gap + i * (bar_height + gap), length=length))
    return RowChart(width=width, height=gap + len(items) * (bar_height + gap), left=left, span=span,
                    bar_height=bar_height, rows=tuple(rows))


# --- rates the dashboard shows next to its charts (portal adoption) ----------------------------

def percent(part: int, whole: int) -> Decimal | None:
    """part / whole x 100, one decimal, half up (as the CEI); None when whole is zero."""
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Adoption:
    """Portal adoption, counted in debtors: reached = sent at least one portal link, opened = opened
    at least one, paid = paid at least once through the portal (card or direct debit they started)."""
    reached: int
    opened: int
    paid: int

    @property
    def open_rate(self) -> Decimal | None:
        """opened / reached x 100"""
        return percent(self.opened, self.reached)

    @property
    def pay_rate(self) -> Decimal | None:
        """paid / reached x 100"""
        return percent(self.paid, self.reached)

    @property
    def pay_rate_of_opened(self) -> Decimal | None:
        """paid / opened x 100: of the debtors who came to the portal, how many paid there"""
        return percent(self.paid, self.opened)
