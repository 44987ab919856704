"""The dashboard's own arithmetic (portal/domain/charts.py): portal adoption rates and the
geometry of the SVG charts. DSO, ageing and CEI are tested in test_ageing.py."""
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from portal.domain.charts import Adoption, column_chart, nice_step, percent, row_chart


# --- rates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("part, whole, expected", [
    (1, 2, Decimal("50.0")), (1, 3, Decimal("33.3")), (2, 3, Decimal("66.7")),
    (1, 8, Decimal("12.5")),          # 12.5 exactly
    (1, 16, Decimal("6.3")),          # 6.25 -> half up
    (300, 2050, Decimal("14.6")),     # 14.634...
    (250, 2050, Decimal("12.2")),     # 12.195...
    (0, 5, Decimal("0.0")), (5, 5, Decimal("100.0")),
])
def test_percent_worked_examples(part, whole, expected):
    assert percent(part, whole) == expected


def test_percent_of_nothing_is_none():
    assert percent(0, 0) is None and percent(3, 0) is None


def test_adoption_worked_example():
    # 40 debtors were sent a link, 25 opened one, 10 paid through the portal.
    a = Adoption(reached=40, opened=25, paid=10)
    assert a.open_rate == Decimal("62.5")
    assert a.pay_rate == Decimal("25.0")
    assert a.pay_rate_of_opened == Decimal("40.0")
    assert Adoption(0, 0, 0).open_rate is None and Adoption(0, 0, 0).pay_rate is None


@given(st.integers(0, 10**6).flatmap(lambda whole: st.tuples(st.integers(0, whole), st.just(whole))))
def test_percent_is_within_bounds_and_close(args):
    part, whole = args
    p = percent(part, whole)
    if whole == 0:
        assert p is None
        return
    assert Decimal(0) <= p <= Decimal(100)
    assert abs(p - Decimal(part) * 100 / whole) <= Decimal("0.05")


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_adoption_funnel_rates_are_ordered(reached, opened, paid):
    opened, paid = min(opened, reached), min(paid, opened, reached)
    a = Adoption(reached, opened, paid)
    if reached:
        assert a.pay_rate <= a.open_rate <= 100


# --- chart geometry --------------------------------------------------------------------------------

@pytest.mark.parametrize("maximum, expected", [
    (0, 1), (1, 1), (4, 1), (5, 2), (8, 2), (9, 5), (20, 5), (21, 10), (70000, 20000), (80000, 20000),
    (80001, 50000), (199999, 50000), (200001, 100000),
])
def test_nice_step(maximum, expected):
    assert nice_step(maximum, 4) == expected


@given(st.integers(1, 10**15), st.integers(1, 8))
def test_nice_steps_cover_the_maximum_tightly(maximum, count):
    step = nice_step(maximum, count)
    assert step * count >= maximum
    digits = str(step).rstrip("0")
    assert digits in ("1", "2", "5")
    # The next smaller nice step would not reach the maximum.
    smaller = {"1": step // 2, "2": step // 2, "5": step * 2 // 5}[digits]
    assert smaller == 0 or smaller * count < maximum


def test_column_chart_worked_example():
    # The dashboard's ageing: 300, 300, 250, 500, 700 (hundreds of cents): ticks of 200.00 up to 800.00,
    # plot height 240 - 12 - 36 = 192, so 700.00 is 192 * 70000 / 80000 = 168 high.
    chart = column_chart([("not_due", 30000), ("1_30", 30000), ("31_60", 25000), ("61_90", 50000),
                          ("over_90", 70000)])
    assert [c.height for c in chart.columns] == [72, 72, 60, 120, 168]
    assert [t.value for t in chart.ticks] == [0, 20000, 40000, 60000, 80000]
    assert [t.y for t in chart.ticks] == [204, 156, 108, 60, 12]
    assert chart.baseline == 204
    assert all(c.y + c.height == chart.baseline for c in chart.columns)
    # (640 - 96) / 5 = 108 wide slots, bars 92 wide centred in them.
    assert [c.x for c in chart.columns] == [104, 212, 320, 428, 536]
    assert {c.width for c in chart.columns} == {92}


@given(st.lists(st.integers(-10**6, 10**12), min_size=1, max_size=8))
def test_column_chart_bars_fit_and_keep_their_order(values):
    chart = column_chart([(str(i), v) for i, v in enumerate(values)])
    top = chart.ticks[-1].y
    for c in chart.columns:
        assert 0 <= c.height <= chart.baseline - top
        assert c.x >= chart.left and c.x + c.width <= chart.width
    for a, b in zip(chart.columns, chart.columns[1:]):
        assert a.x + a.width <= b.x  # no overlap
        if max(a.value, 0) <= max(b.value, 0):
            assert a.height <= b.height


def test_empty_column_chart_draws_nothing():
    chart = column_chart([("a", 0), ("b", 0)])
    assert [c.height for c in chart.columns] == [0, 0]


def test_row_chart_worked_example():
    # 40 reached, 25 opened, 10 paid, over a 640 - 200 - 80 = 360 span.
    chart = row_chart([("reached", 40), ("opened", 25), ("paid", 10)], total=40)
    assert chart.span == 360
    assert [r.length for r in chart.rows] == [360, 225, 90]
    assert [r.y for r in chart.rows] == [12, 48, 84]
    assert chart.height == 120
    assert [r.length for r in row_chart([("a", 5)], total=0).rows] == [0]


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=6))
def test_row_chart_lengths_are_shares_of_the_total(values):
    chart = row_chart([(str(i), v) for i, v in enumerate(values)])
    assert max(r.length for r in chart.rows) == (chart.span if max(values) > 0 else 0)
    for r in chart.rows:
        assert 0 <= r.length <= chart.span
