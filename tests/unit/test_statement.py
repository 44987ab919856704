"""The statement of account rules (portal/domain/statement.py), against hand-computed examples."""
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.statement import Entry, build, net_allocations, outstanding_at

D = date


def example():
    return [Entry(D(2026, 9, 1), "invoice", "F-1", debit=120000),
            Entry(D(2026, 9, 15), "payment", "P-A", credit=20000),
            Entry(D(2026, 10, 1), "invoice", "F-2", debit=30050),
            Entry(D(2026, 10, 20), "payment", "P-B", credit=10000),
            Entry(D(2026, 11, 5), "refund", "P-B", debit=4000),
            Entry(D(2026, 11, 20), "credit", "AV-1", credit=5050),
            Entry(D(2026, 12, 10), "payment", "P-C", credit=99999)]  # after the period


def test_hand_computed_period():
    s = build(example(), D(2026, 10, 1), D(2026, 11, 30))
    assert s.opening == 120000 - 20000 == 100000
    assert [(r.label, r.balance) for r in s.rows] == [
        ("F-2", 130050), ("P-B", 120050), ("P-B", 124050), ("AV-1", 119000)]
    assert (s.total_debit, s.total_credit) == (30050 + 4000, 10000 + 5050)
    assert s.closing == 119000 == s.opening + s.total_debit - s.total_credit


def test_everything_before_the_period_folds_into_the_opening_balance():
    s = build(example(), D(2026, 11, 21), D(2026, 11, 30))
    assert s.rows == [] and s.opening == s.closing == 119000
    assert (s.total_debit, s.total_credit) == (0, 0)


def test_bounds_are_inclusive_and_same_day_invoice_comes_first():
    entries = [Entry(D(2026, 10, 1), "payment", "P", credit=500), Entry(D(2026, 10, 1), "invoice", "F", debit=500)]
    s = build(entries, D(2026, 10, 1), D(2026, 10, 1))
    assert [(r.kind, r.balance) for r in s.rows] == [("invoice", 500), ("payment", 0)]
    assert s.opening == 0 and s.closing == 0


def test_refused_input():
    with pytest.raises(ValueError):
        build([], D(2026, 10, 2), D(2026, 10, 1))
    with pytest.raises(ValueError):
        build([Entry(D(2026, 10, 1), "invoice", "F", debit=-1)], D(2026, 1, 1), D(2026, 12, 31))
    with pytest.raises(ValueError):
        build([Entry(D(2026, 10, 1), "invoice", "F", debit=1.5)], D(2026, 1, 1), D(2026, 12, 31))


def test_ageing_at_the_end_of_the_period_and_unallocated_credit():
    # F-1 900.00 due 1 Oct (60 days late on 30 Nov), F-2 300.50 due 31 Oct (30 days), 50.00 not allocated.
    entries = [Entry(D(2026, 9, 1), "invoice", "F-1", debit=120000),
               Entry(D(2026, 9, 15), "payment", "P-A", credit=35000),  # 300.00 to F-1, 50.00 left over
               Entry(D(2026, 10, 1), "invoice", "F-2", debit=30050)]
    s = build(entries, D(2026, 10, 1), D(2026, 11, 30), [(D(2026, 10, 1), 90000), (D(2026, 10, 31), 30050)])
    assert s.ageing == {"not_due": 0, "1_30": 30050, "31_60": 90000, "61_90": 0, "over_90": 0}
    assert s.aged_total == 120050 and s.closing == 115050 and s.unallocated == 5000


def test_net_allocations_follow_the_ledger_rule():
    # 100.00 paid 60.00 to A then 30.00 to B, 10.00 left as credit.
    allocations = [("A", 6000), ("B", 3000)]
    assert net_allocations(10000, allocations, 0) == {"A": 6000, "B": 3000}
    assert net_allocations(10000, allocations, 1000) == {"A": 6000, "B": 3000}  # the credit goes first
    assert net_allocations(10000, allocations, 2500) == {"A": 6000, "B": 1500}  # then the last allocation
    assert net_allocations(10000, allocations, 10000) == {"A": 0, "B": 0}


def test_outstanding_at():
    invoices = [("A", D(2026, 10, 1), 10000), ("B", D(2026, 11, 1), 5000)]
    payments = [(8000, [("A", 8000)], 0), (7000, [("A", 2000), ("B", 5000)], 5000)]
    # Second payment reversed by 50.00: all of it from its last allocation, B.
    assert outstanding_at(invoices, payments) == [(D(2026, 10, 1), 0), (D(2026, 11, 1), 5000)]


entry = st.builds(Entry,
                  day=st.dates(D(2025, 1, 1), D(2027, 12, 31)),
                  kind=st.sampled_from(["invoice", "payment", "credit", "refund", "chargeback", "failed"]),
                  label=st.text("ABC-123", min_size=1, max_size=6),
                  debit=st.integers(0, 10**9), credit=st.integers(0, 10**9))


@given(st.lists(entry, max_size=40), st.dates(D(2025, 1, 1), D(2027, 12, 31)), st.integers(0, 800))
def test_opening_plus_movements_is_closing(entries, start, days):
    end = start + timedelta(days=days)
    s = build(entries, start, end)
    assert s.opening == sum(e.debit - e.credit for e in entries if e.day < start)
    assert s.closing == s.opening + s.total_debit - s.total_credit
    assert s.closing == sum(e.debit - e.credit for e in entries if e.day <= end)
    assert len(s.rows) == sum(1 for e in entries if start <= e.day <= end)
    assert all(start <= r.day <= end for r in s.rows)
    assert [r.day for r in s.rows] == sorted(r.day for r in s.rows)
    balance = s.opening
    for r in s.rows:
        balance += r.debit - r.credit
        assert r.balance == balance
    assert (s.rows[-1].balance if s.rows else s.opening) == s.closing


@given(st.lists(entry, max_size=30), st.dates(D(2025, 1, 1), D(2027, 12, 31)), st.integers(0, 400),
       st.integers(0, 400))
def test_splitting_a_period_chains_its_balances(entries, start, first, second):
    """The closing balance of one period is the opening balance of the next."""
    middle = start + timedelta(days=first)
    end = middle + timedelta(days=1 + second)
    a, b = build(entries, start, middle), build(entries, middle + timedelta(days=1), end)
    whole = build(entries, start, end)
    assert a.closing == b.opening and b.closing == whole.closing
    assert len(a.rows) + len(b.rows) == len(whole.rows)
