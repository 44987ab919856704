"""Money: integer minor units with a currency, decimal strings on the wire, never a float."""
import ast
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, strategies as st

from portal.domain import money
from portal.domain.money import (MAX_MAJOR_UNITS, Money, MoneyError, OpenItem, allocate, exponent,
                                 format_money, parse_amount, to_decimal_string)

# Zero, two, three and four decimals (JPY, EUR, KWD/BHD, CLF).
CURRENCIES = ["EUR", "USD", "GBP", "CHF", "JPY", "KRW", "KWD", "BHD", "TND", "CLF"]


def test_exponents_of_the_currencies_used_below():
    assert [exponent(c) for c in ("EUR", "JPY", "KWD", "CLF")] == [2, 0, 3, 4]
    assert exponent("eur") == 2


@st.composite
def canonical_amounts(draw, currency=st.sampled_from(CURRENCIES)):
    """(currency, canonical decimal string, expected minor units), built without Money's code."""
    cur = draw(currency)
    places = exponent(cur)
    whole = draw(st.integers(0, MAX_MAJOR_UNITS))
    frac = 0 if whole == MAX_MAJOR_UNITS or places == 0 else draw(st.integers(0, 10**places - 1))
    text = str(whole) + (f".{frac:0{places}d}" if places else "")
    return cur, text, whole * 10**places + frac


@given(canonical_amounts())
@example(("EUR", "0.00", 0))
@example(("EUR", "10000000000.00", 10**12))
@example(("JPY", "10000000000", 10**10))
@example(("KWD", "0.001", 1))
def test_parse_and_format_round_trip(case):
    currency, text, minor = case
    parsed = parse_amount(text, currency, allow_zero=True)
    assert type(parsed) is int and parsed == minor
    assert to_decimal_string(parsed, currency) == text


@given(st.sampled_from(CURRENCIES), st.integers(-10**13, 10**13))
def test_format_then_parse_round_trip(currency, minor):
    text = to_decimal_string(minor, currency)
    assert isinstance(text, str)
    if minor < 0:
        assert text.startswith("-")
        with pytest.raises(MoneyError):
            parse_amount(text, currency)
    elif minor <= MAX_MAJOR_UNITS * 10 ** exponent(currency):
        assert parse_amount(text, currency, allow_zero=True) == minor
    else:
        with pytest.raises(MoneyError, match="too large"):
            parse_amount(text, currency)


@pytest.mark.parametrize("text, currency, minor, canonical", [
    ("1200.50", "EUR", 120050, "1200.50"),
    ("1200.5", "EUR", 120050, "1200.50"),
    ("1200", "EUR", 120000, "1200.00"),
    ("0.01", "EUR", 1, "0.01"),
    ("1200", "JPY", 1200, "1200"),
    ("1200.0", "JPY", 1200, "1200"),  # a zero decimal is still a whole yen
    ("12.345", "KWD", 12345, "12.345"),
    ("12.3", "KWD", 12300, "12.300"),
    ("0.001", "BHD", 1, "0.001"),
    ("12.000", "EUR", 1200, "12.00"),  # trailing zeros do not change the value
    ("1200.00", "eur", 120000, "1200.00"),
])
def test_parse_worked_examples(text, currency, minor, canonical):
    assert parse_amount(text, currency) == minor
    assert to_decimal_string(minor, currency) == canonical


def test_to_decimal_string_negative_and_small():
    assert to_decimal_string(-5, "EUR") == "-0.05"
    assert to_decimal_string(-120050, "EUR") == "-1200.50"
    assert to_decimal_string(7, "KWD") == "0.007"
    assert to_decimal_string(-7, "JPY") == "-7"


@pytest.mark.parametrize("text, currency", [
    ("1.001", "EUR"), ("0.005", "EUR"), ("1.5", "JPY"), ("100.01", "JPY"), ("1.0001", "KWD"),
    # Beyond Decimal's 28 significant digits: must be refused, not silently rounded.
    ("1.000000000000000000000000000001", "EUR"),
    ("9999999999.999999999999999999999", "EUR"),
    ("0.0000000000000000000000000000000000001", "EUR"),
])
def test_too_many_decimals_refused(text, currency):
    with pytest.raises(MoneyError, match="decimals"):
        parse_amount(text, currency)


@given(canonical_amounts(), st.text("0123456789", max_size=40), st.sampled_from("123456789"))
@example(("EUR", "1.00", 100), "0" * 30, "1")
def test_any_extra_significant_decimal_is_refused(case, middle, last):
    currency, text, _ = case
    places = exponent(currency)
    longer = text + ("" if places else ".") + middle + last
    with pytest.raises(MoneyError):
        parse_amount(longer, currency)


@given(canonical_amounts(), st.integers(1, 40))
def test_trailing_zeros_do_not_change_the_value(case, zeros):
    currency, text, minor = case
    padded = text + ("" if exponent(currency) else ".") + "0" * zeros
    assert parse_amount(padded, currency, allow_zero=True) == minor


@pytest.mark.parametrize("text", ["-1.00", "-0.01", "-0", "-1"])
def test_negative_refused(text):
    with pytest.raises(MoneyError):
        parse_amount(text, "EUR")


@pytest.mark.parametrize("text, currency", [
    ("10000000000.01", "EUR"), ("10000000001", "EUR"), ("99999999999", "JPY"),
    ("9999999999999999", "EUR"), ("10000000000.001", "KWD"),
])
def test_huge_refused(text, currency):
    with pytest.raises(MoneyError, match="too large"):
        parse_amount(text, currency)


@pytest.mark.parametrize("text", [
    "12345678901234567", "1" * 400, "1" * 5000 + ".00",  # beyond any sane length
])
def test_absurdly_long_refused(text):
    with pytest.raises(MoneyError):
        parse_amount(text, "EUR")


@pytest.mark.parametrize("text", [
    "", " ", "1,00", "1 000.00", "1.", ".5", "01.00", "00", "1e3", "1E3", "+1.00", "1_000",
    "0x10", "NaN", "Infinity", "inf", "1.2.3", "€1.00", "1.00€", "١٢٣", "１２",
])
def test_malformed_refused(text):
    with pytest.raises(MoneyError):
        parse_amount(text, "EUR")


@pytest.mark.parametrize("value", [1200, 12.5, 0.1, Decimal("12.50"), None, b"12.50", True, ["12.50"]])
def test_non_string_refused(value):
    # A JSON float (or anything already converted) may have lost precision: refuse it.
    with pytest.raises(MoneyError, match="decimal string"):
        parse_amount(value, "EUR")


def test_zero_needs_allow_zero():
    with pytest.raises(MoneyError, match="greater than zero"):
        parse_amount("0.00", "EUR")
    assert parse_amount("0.00", "EUR", allow_zero=True) == 0
    assert parse_amount("0", "JPY", allow_zero=True) == 0


@pytest.mark.parametrize("currency", ["XYZ", "EURO", "", None, 978, "E U"])
def test_unknown_currency_refused(currency):
    with pytest.raises(MoneyError, match="currency"):
        parse_amount("1.00", currency)
    with pytest.raises(MoneyError):
        Money(100, currency)


def test_no_float_in_money_or_ageing_source():
    """The invariant read literally: no float literal, no float() call, no true division on amounts
    in the money module (ageing divides Decimals only)."""
    for module in ("money", "ageing"):
        tree = ast.parse((Path(money.__file__).parent / f"{module}.py").read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), (module, node.lineno)
            assert not (isinstance(node, ast.Name) and node.id == "float"), (module, node.lineno)
            if module == "money":
                assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)), node.lineno


def test_format_money_for_people():
    def plain(s):
        return s.replace("\u202f", " ").replace("\xa0", " ")
    assert plain(format_money(120050, "EUR", "fr")) == "1 200,50 €"
    assert format_money(120050, "EUR", "en") == "€1,200.50"
    assert format_money(120050, "JPY", "en") == "¥120,050"
    assert "120.050" in format_money(120050, "KWD", "en")
    assert format_money(1, "EUR", "en") == "€0.01"


# --- Money -------------------------------------------------------------------------------

def test_money_arithmetic_same_currency():
    a, b = Money(1050, "EUR"), Money(250, "eur")
    assert a + b == Money(1300, "EUR")
    assert a - b == Money(800, "EUR")
    assert b - a == Money(-800, "EUR")
    assert str(a) == "10.50 EUR"
    assert str(Money(5, "JPY")) == "5 JPY"


@pytest.mark.parametrize("other", [Money(100, "USD"), Money(100, "JPY"), 100, Decimal("1.00"), None])
def test_money_refuses_mixing(other):
    eur = Money(100, "EUR")
    with pytest.raises((MoneyError, TypeError)):
        eur + other
    with pytest.raises((MoneyError, TypeError)):
        eur - other
    if isinstance(other, Money):
        with pytest.raises(MoneyError, match="currencies"):
            eur + other
        with pytest.raises(MoneyError, match="currencies"):
            other - eur


@pytest.mark.parametrize("minor", [1.0, 10.5, Decimal(100), "100", True, None])
def test_money_holds_integers_only(minor):
    with pytest.raises(MoneyError):
        Money(minor, "EUR")


@given(st.sampled_from(CURRENCIES), st.integers(-10**15, 10**15), st.integers(-10**15, 10**15))
def test_money_add_sub_inverse(currency, x, y):
    a, b = Money(x, currency), Money(y, currency)
    assert (a + b) - b == a
    assert (a + b).minor == x + y and type((a + b).minor) is int


# --- allocate ----------------------------------------------------------------------------

D0 = date(2026, 1, 1)


def test_allocate_worked_example():
    items = [OpenItem("A", date(2026, 3, 1), 500), OpenItem("B", date(2026, 1, 1), 300),
             OpenItem("C", date(2026, 2, 1), 200)]
    assert allocate(600, items) == ([("B", 300), ("C", 200), ("A", 100)], 0)
    assert allocate(1200, items) == ([("B", 300), ("C", 200), ("A", 500)], 200)
    assert allocate(300, items) == ([("B", 300)], 0)
    assert allocate(0, items) == ([], 0)
    assert allocate(50, []) == ([], 50)


def test_allocate_ties_keep_given_order_and_skip_settled_items():
    items = [OpenItem("X", D0, 100), OpenItem("paid", D0, 0), OpenItem("Y", D0, 100),
             OpenItem("Z", D0 - timedelta(days=1), 10)]
    assert allocate(150, items) == ([("Z", 10), ("X", 100), ("Y", 40)], 0)


def test_allocate_refuses_negative():
    with pytest.raises(MoneyError):
        allocate(-1, [OpenItem("A", D0, 100)])


items_strategy = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 10_000)), max_size=12)


@given(items_strategy, st.integers(0, 130_000))
def test_allocate_properties(raw, amount):
    items = [OpenItem(i, D0 + timedelta(days=d), bal) for i, (d, bal) in enumerate(raw)]
    lines, remainder = allocate(amount, items)
    by_key = {item.key: item for item in items}

    assert sum(a for _, a in lines) + remainder == amount
    assert remainder >= 0
    assert len({k for k, _ in lines}) == len(lines)  # one line per item
    for key, allocated in lines:
        assert type(allocated) is int
        assert 0 < allocated <= by_key[key].balance
    # Oldest due date first, ties in the order given: lines follow (due date, position).
    order = [(by_key[k].due_date, k) for k, _ in lines]
    assert order == sorted(order)
    # Greedy: an item gets money only once every item before it (in that order) is fully paid.
    paid = dict(lines)
    ranked = sorted(items, key=lambda i: (i.due_date, i.key))
    for pos, item in enumerate(ranked):
        if paid.get(item.key):
            assert all(paid.get(e.key, 0) == e.balance for e in ranked[:pos])
    # Money is left over only when everything is settled.
    if remainder:
        assert all(paid.get(i.key, 0) == i.balance for i in items)
    else:
        assert sum(paid.values()) == amount


@given(items_strategy, st.integers(0, 130_000))
def test_allocate_is_deterministic_and_leaves_input_alone(raw, amount):
    items = [OpenItem(i, D0 + timedelta(days=d), bal) for i, (d, bal) in enumerate(raw)]
    snapshot = list(items)
    assert allocate(amount, items) == allocate(amount, list(items))
    assert items == snapshot
