"""The pure arithmetic of payer behaviour and the weekly forecast (portal/domain/payer.py, forecast.py)."""
from datetime import date
from decimal import Decimal

from portal.domain.forecast import week_start, weekly
from portal.domain.payer import PayerStats, shift_days, trend


def test_averages_and_shares_round_half_up():
    s = PayerStats(invoices_paid=3, days_late_total=25, paid_on_time=2)
    assert s.average_days_late == Decimal("8.3") and s.paid_on_time_share == Decimal("0.67")
    assert PayerStats(8, 20, 1).average_days_late == Decimal("2.5")
    assert PayerStats(8, 20, 1).paid_on_time_share == Decimal("0.13")  # 0.125 half up
    assert PayerStats().as_json() == {"average_days_late": None, "paid_on_time_share": None, "invoices_paid": 0}
    assert PayerStats(4, 30, 1).as_json() == {"average_days_late": 7.5, "paid_on_time_share": "0.25",
                                              "invoices_paid": 4}


def test_trend_and_shift():
    assert trend(PayerStats(1, 2, 0), PayerStats(1, 20, 0)) == "better"
    assert trend(PayerStats(2, 10, 0), PayerStats(1, 5, 0)) == "steady"
    assert trend(PayerStats(1, 9, 0), PayerStats(2, 3, 1)) == "worse"
    assert trend(PayerStats(), PayerStats(1, 5, 0)) is None
    assert [shift_days(None), shift_days(Decimal("2.4")), shift_days(Decimal("2.5")), shift_days(Decimal("0.0"))] == \
        [0, 2, 3, 0]


def test_weeks_start_on_monday_and_the_past_counts_in_the_first():
    today = date(2026, 12, 6)  # a Sunday: its week started on Monday 30 November
    assert week_start(today) == date(2026, 11, 30) and week_start(date(2026, 11, 30)) == date(2026, 11, 30)
    got = weekly([(date(2026, 1, 1), 5), (date(2026, 12, 6), 7), (date(2026, 12, 7), 11), (date(2026, 12, 13), 13),
                  (date(2026, 12, 14), 17)], today, 2)
    assert got == [(date(2026, 11, 30), 12), (date(2026, 12, 7), 24)]  # 12-14 is beyond the two weeks
