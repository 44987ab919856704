"""Late-payment interest (L441-10) and the 40 EUR recovery indemnity (D441-5).

Every worked example writes its arithmetic out: balance (minor units) × rate × late days / 365,
summed exactly over the segments, rounded half-up once at the end.
"""
import ast
import math
import random
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import assume, example, given, strategies as st

from portal.domain import charges
from portal.domain.charges import (DEFAULT_MARGIN_BP, RECOVERY_INDEMNITY_EUR_MINOR, Charges,
                                   ChargesError, MissingReferenceRate, late_charges,
                                   rate_for_half_year)
from portal.domain.money import MoneyError

# ECB main refinancing operations rate, (effective from, bp), as published by the ECB.
ECB_MRO = [
    (date(2016, 3, 16), 0),
    (date(2022, 7, 27), 50),
    (date(2022, 9, 14), 125),
    (date(2022, 11, 2), 200),
    (date(2022, 12, 21), 250),
    (date(2023, 2, 8), 300),
    (date(2023, 3, 22), 350),
    (date(2023, 5, 10), 375),
    (date(2023, 6, 21), 400),
    (date(2023, 8, 2), 425),
    (date(2023, 9, 20), 450),
    (date(2024, 6, 12), 425),
    (date(2024, 9, 18), 365),
    (date(2024, 10, 23), 340),
    (date(2024, 12, 18), 315),
    (date(2025, 2, 5), 290),
    (date(2025, 3, 12), 265),
    (date(2025, 4, 23), 240),
    (date(2025, 6, 11), 215),
]


def business(balance, currency, due, as_of, **kw):
    kw.setdefault("reference_rates", ECB_MRO)
    return late_charges(balance, currency, due, as_of, debtor_kind="business", **kw)


# --- the rate for a half-year ----------------------------------------------------------------

@pytest.mark.parametrize("day, expected_bp", [
    # The rate in force on 1 January / 1 July, whatever the ECB did later in the half-year.
    # These are the half-yearly "taux BCE" published in France for late-payment penalties.
    (date(2022, 3, 1), 0),      # H1 2022: 0.00 %
    (date(2022, 7, 1), 0),      # H2 2022: 0.00 % (the rise to 0.50 % came on 27 July 2022)
    (date(2022, 12, 31), 0),
    (date(2023, 1, 1), 250),    # H1 2023: 2.50 %
    (date(2023, 7, 1), 400),    # H2 2023: 4.00 %
    (date(2024, 6, 30), 450),   # H1 2024: 4.50 %
    (date(2024, 7, 1), 425),    # H2 2024: 4.25 %
    (date(2025, 3, 31), 315),   # H1 2025: 3.15 % (not 2.65 %, in force on 31 March)
    (date(2025, 12, 31), 215),  # H2 2025: 2.15 %
])
def test_rate_for_half_year_is_the_rate_in_force_on_its_first_day(day, expected_bp):
    assert rate_for_half_year(day, ECB_MRO) == expected_bp


def test_an_entry_effective_on_the_first_day_of_the_half_year_applies_to_it():
    table = [(date(2025, 7, 1), 215), (date(2025, 1, 1), 315)]  # unsorted on purpose
    assert rate_for_half_year(date(2025, 7, 1), table) == 215
    assert rate_for_half_year(date(2025, 6, 30), table) == 315


def test_rate_for_half_year_does_not_depend_on_the_order_of_the_table():
    shuffled = ECB_MRO[:]
    random.Random(4).shuffle(shuffled)
    for day in (date(2023, 1, 1), date(2024, 9, 30), date(2025, 8, 1)):
        assert rate_for_half_year(day, shuffled) == rate_for_half_year(day, ECB_MRO)


def test_missing_reference_rate_is_a_clear_error():
    # The table starts on 5 February 2025: nothing was in force on 1 January 2025.
    with pytest.raises(MissingReferenceRate, match="2025-01-01"):
        rate_for_half_year(date(2025, 3, 31), [(date(2025, 2, 5), 290)])
    with pytest.raises(MissingReferenceRate, match="2025-01-01"):
        business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30),
                 reference_rates=[(date(2025, 2, 5), 290)])
    with pytest.raises(MissingReferenceRate):
        business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30), reference_rates=[])
    # Only the second half-year is covered: the first segment still needs its own rate.
    with pytest.raises(MissingReferenceRate, match="2025-01-01"):
        business(1_000_000, "EUR", date(2025, 6, 15), date(2025, 7, 20),
                 reference_rates=[(date(2025, 7, 1), 215)])
    assert issubclass(MissingReferenceRate, ValueError)


@pytest.mark.parametrize("table", [
    [(date(2025, 1, 1), 315), (date(2025, 1, 1), 290)],   # two rates for the same day
    [(date(2025, 1, 1), "3.15")],                          # not integer bp
    [(date(2025, 1, 1), 3.15)],                            # a float, above all
    [(date(2025, 1, 1), True)],
    [(datetime(2025, 1, 1), 315)],                         # a datetime is not a date
    [(date(2025, 1, 1),)],                                 # not a pair
])
def test_malformed_reference_tables_are_refused(table):
    with pytest.raises((ChargesError, TypeError)):
        rate_for_half_year(date(2025, 3, 1), table)


def test_the_same_entry_twice_is_harmless():
    assert rate_for_half_year(date(2025, 3, 1), [(date(2025, 1, 1), 315)] * 2) == 315


# --- worked examples ---------------------------------------------------------------------

def test_sixty_days_at_ecb_plus_ten_points():
    # 10,000.00 EUR due 2025-03-31, computed 2025-05-30: late 1 April..30 May = 30 + 30 = 60 days.
    # ECB rate in force on 1 January 2025: 3.15 % -> 3.15 + 10 = 13.15 % = 1315 bp.
    # 1,000,000 × 0.1315 × 60/365 = 78,900,000,000 / 3,650,000 = 21,616.438… -> 21,616 = 216.16 EUR
    c = business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30))
    assert c == Charges(21_616, 4_000, ((date(2025, 4, 1), date(2025, 5, 30), 1315),))
    assert c.total == 25_616  # 216.16 + 40.00 = 256.16 EUR


def test_a_period_spanning_two_half_years_is_split():
    # 10,000.00 EUR due 2025-06-15, computed 2025-07-20.
    # 16..30 June = 15 days at 3.15 + 10 = 13.15 % (rate in force on 1 January 2025)
    #   1,000,000 × 0.1315 × 15/365 = 19,725,000,000 / 3,650,000 =  5,404.109…
    # 1..20 July = 20 days at 2.15 + 10 = 12.15 % (rate in force on 1 July 2025)
    #   1,000,000 × 0.1215 × 20/365 = 24,300,000,000 / 3,650,000 =  6,657.534…
    # total 12,061.643… -> 12,062 = 120.62 EUR
    c = business(1_000_000, "EUR", date(2025, 6, 15), date(2025, 7, 20))
    assert c.rate_bp_by_segment == ((date(2025, 6, 16), date(2025, 6, 30), 1315),
                                    (date(2025, 7, 1), date(2025, 7, 20), 1215))
    assert (c.interest, c.indemnity) == (12_062, 4_000)


def test_rounding_happens_once_at_the_end():
    # 1,000.17 EUR, same dates as above:
    #   100,017 × 1315 × 15 / 3,650,000 = 1,972,835,325 / 3,650,000 = 540.502…  (alone: 541)
    #   100,017 × 1215 × 20 / 3,650,000 = 2,430,413,100 / 3,650,000 = 665.866…  (alone: 666)
    # sum 1,206.369… -> 1,206 (rounding each segment first would give 541 + 666 = 1,207)
    c = business(100_017, "EUR", date(2025, 6, 15), date(2025, 7, 20))
    assert c.interest == 1_206


def test_a_period_spanning_a_whole_year_has_one_segment_per_half_year():
    # 10,000.00 EUR due 2023-12-31, computed 2024-12-31, 366 days (2024 is a leap year):
    #   1 Jan..30 Jun 2024 = 182 days at 4.50 + 10 = 14.50 %:
    #     1,000,000 × 1450 × 182 / 3,650,000 = 72,301.369…
    #   1 Jul..31 Dec 2024 = 184 days at 4.25 + 10 = 14.25 %:
    #     1,000,000 × 1425 × 184 / 3,650,000 = 71,835.616…
    #   total 144,136.986… -> 144,137 (exact/365: the leap day counts, the divisor stays 365)
    c = business(1_000_000, "EUR", date(2023, 12, 31), date(2024, 12, 31))
    assert c.rate_bp_by_segment == ((date(2024, 1, 1), date(2024, 6, 30), 1450),
                                    (date(2024, 7, 1), date(2024, 12, 31), 1425))
    assert c.interest == 144_137


def test_exact_365_in_a_leap_year():
    # 10,000.00 EUR at a contractual 10 % for the 366 days of 2024:
    # 1,000,000 × 1000 × 366 / 3,650,000 = 100,273.972… -> 100,274 (a 366 divisor would give 100,000)
    c = business(1_000_000, "EUR", date(2023, 12, 31), date(2024, 12, 31), contractual_bp=1000)
    assert c.interest == 100_274


def test_contractual_rate():
    # 12 % = 1200 bp instead of ECB + 10: 1,000,000 × 0.12 × 60/365
    #   = 72,000,000,000 / 3,650,000 = 19,726.027… -> 19,726 = 197.26 EUR
    c = business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30), contractual_bp=1200)
    assert c == Charges(19_726, 4_000, ((date(2025, 4, 1), date(2025, 5, 30), 1200),))


def test_a_contractual_rate_needs_no_reference_rate_and_is_not_split():
    # Across the 30 June / 1 July boundary: 35 days at 12 %, one segment.
    # 1,000,000 × 1200 × 35 / 3,650,000 = 11,506.849… -> 11,507
    c = business(1_000_000, "EUR", date(2025, 6, 15), date(2025, 7, 20),
                 contractual_bp=1200, reference_rates=[])
    assert c == Charges(11_507, 4_000, ((date(2025, 6, 16), date(2025, 7, 20), 1200),))


def test_a_contractual_zero_rate_is_zero_interest_but_the_indemnity_stays():
    c = business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30), contractual_bp=0)
    assert (c.interest, c.indemnity) == (0, 4_000)


def test_public_body_sixty_days_at_ecb_plus_eight_points():
    # Code de la commande publique L2192-13 (rate: R2192-31): ECB + 8 points, 40 EUR.
    # Same 10,000.00 EUR, 60 days late: 3.15 + 8 = 11.15 % = 1115 bp.
    # 1,000,000 × 0.1115 × 60/365 = 66,900,000,000 / 3,650,000 = 18,328.767… -> 18,329 = 183.29 EUR
    c = late_charges(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30), debtor_kind="public",
                     reference_rates=ECB_MRO)
    assert c == Charges(18_329, 4_000, ((date(2025, 4, 1), date(2025, 5, 30), 1115),))


def test_a_public_body_pays_the_legal_rate_whatever_the_contract():
    # The rate is fixed by law for public procurement: the creditor's contractual rate is not used.
    with_contract = late_charges(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30), debtor_kind="public",
                                 reference_rates=ECB_MRO, contractual_bp=1500)
    assert with_contract.interest == 18_329 and with_contract.rate_bp_by_segment[0][2] == 1115


def test_consumer_debtor_owes_neither():
    c = late_charges(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30),
                     debtor_kind="consumer", reference_rates=ECB_MRO)
    assert c == Charges(0, 0, ())
    assert c.total == 0


def test_consumer_needs_no_reference_rate():
    c = late_charges(1_000_000, "EUR", date(2025, 3, 31), date(2025, 5, 30),
                     debtor_kind="consumer", reference_rates=[])
    assert c.total == 0


@pytest.mark.parametrize("as_of", [date(2025, 3, 1), date(2025, 3, 30)])
def test_not_yet_due_is_zero(as_of):
    assert business(1_000_000, "EUR", date(2025, 3, 31), as_of, reference_rates=[]) == Charges(0, 0, ())


def test_due_today_is_zero():
    assert business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 3, 31)) == Charges(0, 0, ())


def test_one_day_late_is_one_day_of_interest():
    # Late on 1 April only: 1,000,000 × 0.1315 × 1/365 = 1,315,000,000 / 3,650,000 = 360.27… -> 360
    c = business(1_000_000, "EUR", date(2025, 3, 31), date(2025, 4, 1))
    assert c == Charges(360, 4_000, ((date(2025, 4, 1), date(2025, 4, 1), 1315),))


def test_gbp_invoice_has_interest_but_no_indemnity():
    # £10,000.00 = 1,000,000 pence, same 60 days at 13.15 %: 21,616 pence; the 40 EUR indemnity
    # is fixed in euros and is not converted.
    c = business(1_000_000, "GBP", date(2025, 3, 31), date(2025, 5, 30))
    assert (c.interest, c.indemnity, c.total) == (21_616, 0, 21_616)


def test_zero_decimal_currency():
    # 1,000,000 JPY, 60 days at 13.15 %: 21,616.438… yen -> 21,616 yen, no indemnity.
    c = business(1_000_000, "jpy", date(2025, 3, 31), date(2025, 5, 30))
    assert (c.interest, c.indemnity) == (21_616, 0)


def test_nothing_due_is_zero():
    assert business(0, "EUR", date(2025, 3, 31), date(2025, 5, 30)) == Charges(0, 0, ())
    assert business(-5_000, "EUR", date(2025, 3, 31), date(2025, 5, 30)) == Charges(0, 0, ())


def test_half_up_on_an_exact_half():
    # H1 2022: ECB 0 % -> 10 %. One day: balance × 1000 × 1 / 3,650,000 = balance / 3,650.
    #   18.25 EUR: 1,825 / 3,650 = 0.5 -> 1 (half-up, not 0)
    #   91.25 EUR: 9,125 / 3,650 = 2.5 -> 3 (half-up, not banker's 2)
    #   91.24 EUR: 9,124 / 3,650 = 2.4997… -> 2
    due, as_of = date(2022, 3, 31), date(2022, 4, 1)
    assert business(1_825, "EUR", due, as_of).interest == 1
    assert business(9_125, "EUR", due, as_of).interest == 3
    assert business(9_124, "EUR", due, as_of).interest == 2


def test_the_indemnity_is_per_invoice_and_does_not_grow():
    assert RECOVERY_INDEMNITY_EUR_MINOR == 4_000 and DEFAULT_MARGIN_BP == 1_000
    for as_of in (date(2025, 4, 1), date(2025, 12, 31), date(2030, 1, 1)):
        assert business(1, "EUR", date(2025, 3, 31), as_of).indemnity == 4_000


# --- arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error", [
    ({"balance": 1000.0}, TypeError),
    ({"balance": True}, TypeError),
    ({"balance": "1000"}, TypeError),
    ({"due_date": datetime(2025, 3, 31)}, TypeError),
    ({"as_of": "2025-05-30"}, TypeError),
    ({"currency": "EURO"}, MoneyError),
    ({"debtor_kind": "company"}, ChargesError),
    ({"contractual_bp": -1}, ChargesError),
    ({"contractual_bp": 12.0}, ChargesError),
    ({"contractual_bp": True}, ChargesError),
])
def test_bad_arguments_are_refused(kwargs, error):
    args = {"balance": 1_000_000, "currency": "EUR", "due_date": date(2025, 3, 31),
            "as_of": date(2025, 5, 30), "debtor_kind": "business", "reference_rates": ECB_MRO}
    args.update(kwargs)
    with pytest.raises(error):
        late_charges(args.pop("balance"), args.pop("currency"), args.pop("due_date"),
                     args.pop("as_of"), **args)


def test_reference_rates_may_be_any_iterable_consumed_once():
    c = business(1_000_000, "EUR", date(2025, 6, 15), date(2025, 7, 20),
                 reference_rates=iter(ECB_MRO))
    assert c.interest == 12_062


# --- properties ----------------------------------------------------------------------------

DAYS = st.dates(date(2020, 1, 1), date(2032, 12, 31))
BALANCES = st.integers(0, 10**12)  # up to ten billion EUR in cents
CONTRACTUAL = st.one_of(st.none(), st.integers(0, 5_000))


@st.composite
def rate_tables(draw):
    """Unsorted tables that always cover 2018 onwards (an anchor on 1 January 2018 or earlier):
    late periods below start at the earliest in 2018 (a split's due date is 500 days before a
    2020 boundary at most)."""
    anchor = (draw(st.dates(date(2000, 1, 1), date(2018, 1, 1))), draw(st.integers(0, 800)))
    rest = draw(st.lists(st.tuples(DAYS, st.integers(0, 800)), max_size=12,
                         unique_by=lambda e: e[0]))
    table = [anchor] + [e for e in rest if e[0] != anchor[0]]
    return draw(st.permutations(table))


def oracle(balance, due, as_of, table, contractual_bp):
    """Day by day, independently of the segment logic: Σ balance × rate(day) / (10,000 × 365),
    then floor(x + 1/2)."""
    if balance <= 0 or as_of <= due:
        return 0
    total = Fraction(0)
    day = due + timedelta(days=1)
    while day <= as_of:
        if contractual_bp is not None:
            rate = contractual_bp
        else:
            first = date(day.year, 1 if day.month < 7 else 7, 1)
            rate = max(e for e in table if e[0] <= first)[1] + 1000
        total += Fraction(balance * rate, 3_650_000)
        day += timedelta(days=1)
    return math.floor(total + Fraction(1, 2))


@given(BALANCES, DAYS, st.integers(-30, 800), rate_tables(), CONTRACTUAL)
@example(1_000_000, date(2025, 3, 31), 60, [(date(2025, 1, 1), 315)], None)
def test_interest_matches_a_day_by_day_oracle(balance, due, late_days, table, contractual_bp):
    as_of = due + timedelta(days=late_days)
    c = business(balance, "EUR", due, as_of, reference_rates=table, contractual_bp=contractual_bp)
    assert c.interest == oracle(balance, due, as_of, table, contractual_bp)


@given(BALANCES, DAYS, st.integers(-30, 800), rate_tables(), CONTRACTUAL)
def test_segments_cover_the_late_period_exactly(balance, due, late_days, table, contractual_bp):
    as_of = due + timedelta(days=late_days)
    c = business(balance, "EUR", due, as_of, reference_rates=table, contractual_bp=contractual_bp)
    if balance == 0 or late_days <= 0:
        assert c == Charges(0, 0, ())
        return
    segs = c.rate_bp_by_segment
    assert segs[0][0] == due + timedelta(days=1) and segs[-1][1] == as_of
    assert sum((last - first).days + 1 for first, last, _ in segs) == late_days
    for (_, last, _), (first, _, _) in zip(segs, segs[1:]):
        assert first == last + timedelta(days=1)
    for first, last, rate in segs:
        if contractual_bp is None:
            assert (first.year, first.month < 7) == (last.year, last.month < 7)  # one half-year
            assert rate == rate_for_half_year(first, table) + DEFAULT_MARGIN_BP
        else:
            assert len(segs) == 1 and rate == contractual_bp


@given(BALANCES, DAYS, st.integers(-30, 800), st.integers(0, 400), rate_tables(), CONTRACTUAL)
def test_interest_is_monotone_in_as_of(balance, due, late_days, more, table, contractual_bp):
    as_of = due + timedelta(days=late_days)
    earlier = business(balance, "EUR", due, as_of, reference_rates=table, contractual_bp=contractual_bp)
    later = business(balance, "EUR", due, as_of + timedelta(days=more), reference_rates=table,
                     contractual_bp=contractual_bp)
    assert earlier.interest <= later.interest
    assert earlier.total <= later.total


@given(BALANCES, BALANCES, DAYS, st.integers(-30, 800), rate_tables(), CONTRACTUAL)
def test_interest_is_monotone_in_balance(b1, b2, due, late_days, table, contractual_bp):
    small, large = sorted((b1, b2))
    as_of = due + timedelta(days=late_days)
    kw = {"reference_rates": table, "contractual_bp": contractual_bp}
    assert (business(small, "EUR", due, as_of, **kw).interest
            <= business(large, "EUR", due, as_of, **kw).interest)


@given(DAYS, st.integers(-30, 800), rate_tables(), CONTRACTUAL,
       st.sampled_from(["EUR", "GBP", "JPY"]), st.sampled_from(["business", "consumer"]))
def test_zero_balance_is_zero(due, late_days, table, contractual_bp, currency, kind):
    c = late_charges(0, currency, due, due + timedelta(days=late_days), debtor_kind=kind,
                     reference_rates=table, contractual_bp=contractual_bp)
    assert c == Charges(0, 0, ()) and c.total == 0


@st.composite
def split_at_half_year_boundary(draw):
    """(due, boundary, as_of): boundary is a 30 June or 31 December with due <= boundary <= as_of,
    so (due, boundary] and (boundary, as_of] are the whole late period cut at 1 January / 1 July."""
    year = draw(st.integers(2020, 2031))
    boundary = draw(st.sampled_from([date(year, 6, 30), date(year, 12, 31)]))
    due = boundary - timedelta(days=draw(st.integers(0, 500)))
    as_of = boundary + timedelta(days=draw(st.integers(0, 500)))
    return due, boundary, as_of


@given(BALANCES, split_at_half_year_boundary(), rate_tables(), CONTRACTUAL)
@example(100_017, (date(2025, 6, 15), date(2025, 6, 30), date(2025, 7, 20)),
         [(date(2024, 12, 18), 315), (date(2025, 6, 11), 215)], None)
def test_splitting_at_a_half_year_boundary_sums_to_the_whole(balance, split, table, contractual_bp):
    due, boundary, as_of = split
    kw = {"reference_rates": table, "contractual_bp": contractual_bp}
    whole = business(balance, "EUR", due, as_of, **kw)
    first = business(balance, "EUR", due, boundary, **kw)
    second = business(balance, "EUR", boundary, as_of, **kw)  # interest runs from boundary + 1
    # Each part is rounded on its own (at most half a minor unit off each): within 1 of the whole.
    assert abs(first.interest + second.interest - whole.interest) <= 1
    if contractual_bp is None:
        assert whole.rate_bp_by_segment == first.rate_bp_by_segment + second.rate_bp_by_segment


@given(BALANCES, DAYS, st.integers(-30, 800), rate_tables(), CONTRACTUAL,
       st.sampled_from(["EUR", "GBP", "JPY", "KWD"]), st.sampled_from(["business", "consumer"]))
def test_results_are_ints_never_floats(balance, due, late_days, table, contractual_bp, currency, kind):
    c = late_charges(balance, currency, due, due + timedelta(days=late_days), debtor_kind=kind,
                     reference_rates=table, contractual_bp=contractual_bp)
    for value in (c.interest, c.indemnity, c.total, *(s[2] for s in c.rate_bp_by_segment)):
        assert type(value) is int
    assert c.indemnity in (0, RECOVERY_INDEMNITY_EUR_MINOR)
    assert c.indemnity == (RECOVERY_INDEMNITY_EUR_MINOR if (kind, currency) == ("business", "EUR")
                           and balance > 0 and late_days > 0 else 0)


def test_no_float_and_no_framework_in_the_charges_source():
    """The invariants read literally: no float literal, no float() call, no true division, and
    the domain imports neither Flask nor SQLAlchemy."""
    tree = ast.parse(Path(charges.__file__).read_text())
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), node.lineno
        assert not (isinstance(node, ast.Name) and node.id == "float"), node.lineno
        assert not (isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div)), node.lineno
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.split(".")[0].lower() in {"flask", "sqlalchemy", "flask_sqlalchemy"}
                           for n in names), node.lineno
