"""Late-payment interest and the fixed recovery indemnity (Code de commerce L441-10, D441-5).

Pure rules: no Flask, no database, no float. Amounts are integer minor units.

Interest ("pénalités de retard", L441-10 II)
- Runs from the day after the due date up to and including the computation date (``as_of``),
  on the amount still due (the invoice's unpaid balance). An invoice due today is not late.
- Simple interest, day count **exact/365**: the exact number of late days, always divided by
  365, including for days that fall in a leap year (the usual French practice; we deliberately
  do not switch to 366). A full leap year late therefore costs 366/365 of the annual rate.
- Rate: the creditor's contractual annual rate when one is given (``contractual_bp``, in basis
  points, 1 bp = 0.01 %; 0 means a contractual 0 %, ``None`` means no contractual rate), else the
  ECB main refinancing rate plus 10 percentage points (``DEFAULT_MARGIN_BP``).
- The ECB rate applicable for a half-year is the one in force on its first day: 1 January for
  January-June, 1 July for July-December. A late period spanning half-years is split there and
  each segment takes its own half-year's rate. A contractual rate is one rate for the whole
  period, so it gives a single segment.
- The segments' interests are summed exactly (Fraction) and rounded half-up to the minor unit
  once, at the end.
- Not checked here (out of scope): L441-10 forbids a contractual rate below three times the
  French legal interest rate ("taux d'intérêt légal"); validating the creditor's rate against
  that floor belongs to whoever records the contractual rate.

Recovery indemnity ("indemnité forfaitaire pour frais de recouvrement", D441-5)
- 40 EUR per late invoice, owed in full as soon as the invoice is late.

A public buyer (``debtor_kind="public"``, Code de la commande publique L2192-13) owes both too, with
two differences (R2192-31, D2192-35): the ECB rate in force on the first day of the half-year in
which interest began to run, plus 8 points, for the whole late period (no split, no contractual
rate); and the same 40 EUR. The figures per kind come from legal.basis, which also words them.

A consumer debtor owes neither (zeros): only legal interest after a formal notice, which we do not
claim. Nothing due (balance <= 0) or not yet late (``as_of <= due_date``) also gives zeros.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

from portal.domain import legal
from portal.domain.money import check_currency

DEFAULT_MARGIN_BP = legal.basis(legal.BUSINESS).margin_bp  # ECB main refinancing rate + 10 points
RECOVERY_INDEMNITY_EUR_MINOR = legal.RECOVERY_INDEMNITY_EUR_MINOR  # 40.00 EUR
DAYS_PER_YEAR = 365  # exact/365, leap years included (see the module docstring)
BP_PER_UNIT = 10_000  # 10,000 bp = 100 %
DEBTOR_KINDS = legal.DEBTOR_KINDS

RateTable = Iterable[tuple[date, int]]


class ChargesError(ValueError):
    """Arguments the charges cannot be computed from."""


class MissingReferenceRate(ChargesError):
    """No ECB reference rate was in force on the first day of a half-year that needs one."""


@dataclass(frozen=True)
class Charges:
    interest: int  # minor units
    indemnity: int  # minor units
    #: (first late day, last late day, annual rate in bp) per segment, both days inclusive
    rate_bp_by_segment: tuple[tuple[date, date, int], ...]

    @property
    def total(self) -> int:
        return self.interest + self.indemnity


NO_CHARGES = Charges(0, 0, ())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_date(value: object, name: str) -> date:
    # A datetime is a date subclass; comparing it with a date raises later, so refuse it now.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime.date, got {value!r}")
    return value


def _half_year_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _half_year_end(day: date) -> date:
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


def _checked_rates(reference_rates: RateTable) -> list[tuple[date, int]]:
    """The table as a list sorted by date; malformed or contradictory entries are refused."""
    rates: dict[date, int] = {}
    for entry in reference_rates:
        try:
            effective_from, rate_bp = entry
        except (TypeError, ValueError):
            raise ChargesError(f"a reference rate is (effective_from, rate_bp), got {entry!r}") from None
        _check_date(effective_from, "effective_from")
        if not _is_int(rate_bp):
            raise ChargesError(f"reference rate must be integer basis points, got {rate_bp!r}")
        if rates.get(effective_from, rate_bp) != rate_bp:
            raise ChargesError(f"two different reference rates from {effective_from.isoformat()}")
        rates[effective_from] = rate_bp
    return sorted(rates.items())


def _rate_in_force(first_day: date, rates: list[tuple[date, int]], day: date) -> int:
    found = None
    for effective_from, rate_bp in rates:  # sorted: the last one not after first_day wins
        if effective_from > first_day:
            break
        found = rate_bp
    if found is None:
        raise MissingReferenceRate(
            f"no ECB reference rate in force on {first_day.isoformat()} "
            f"(needed for {day.isoformat()}); add the rate in force on that date")
    return found


def rate_for_half_year(day: date, reference_rates: RateTable) -> int:
    """ECB main refinancing rate (bp) applicable to ``day``'s half-year: the latest entry of
    ``reference_rates`` (``(effective_from, rate_bp)``, any order) whose ``effective_from`` is on
    or before 1 January (for a day in January-June) or 1 July (July-December).
    Raises MissingReferenceRate if there is none."""
    _check_date(day, "day")
    return _rate_in_force(_half_year_start(day), _checked_rates(reference_rates), day)


def _segments(first: date, last: date) -> list[tuple[date, date]]:
    """[first, last] cut at half-year boundaries (both ends inclusive)."""
    out = []
    start = first
    while start <= last:
        end = min(_half_year_end(start), last)
        out.append((start, end))
        if end == date.max:
            break
        start = end + timedelta(days=1)
    return out


def _round_half_up(value: Fraction) -> int:
    # value >= 0 here; floor(value + 1/2) without leaving exact integers.
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def late_charges(balance: int, currency: str, due_date: date, as_of: date, *, debtor_kind: str,
                 reference_rates: RateTable, contractual_bp: int | None = None) -> Charges:
    """Late-payment interest and recovery indemnity on one invoice, computed on ``as_of``, for a
    ``debtor_kind`` of legal.DEBTOR_KINDS (business, public, consumer).

    ``balance`` is the unpaid amount in minor units of ``currency``. The rules, day count
    (exact/365) and rounding are in the module docstring."""
    if not _is_int(balance):
        raise TypeError(f"balance must be integer minor units, got {balance!r}")
    currency = check_currency(currency)
    _check_date(due_date, "due_date")
    _check_date(as_of, "as_of")
    if debtor_kind not in DEBTOR_KINDS:
        raise ChargesError(f"debtor_kind must be one of {DEBTOR_KINDS}, got {debtor_kind!r}")
    if contractual_bp is not None and (not _is_int(contractual_bp) or contractual_bp < 0):
        raise ChargesError(f"contractual rate must be non-negative integer bp, got {contractual_bp!r}")

    law = legal.basis(debtor_kind)
    if law.margin_bp is None or balance <= 0 or as_of <= due_date:
        return NO_CHARGES

    first_late_day = due_date + timedelta(days=1)
    if contractual_bp is not None and law.contractual_rate:
        segments = ((first_late_day, as_of, contractual_bp),)
    elif law.rate_fixed_at_start:
        rate = _rate_in_force(_half_year_start(first_late_day), _checked_rates(reference_rates), first_late_day)
        segments = ((first_late_day, as_of, rate + law.margin_bp),)
    else:
        rates = _checked_rates(reference_rates)
        segments = tuple(
            (start, end, _rate_in_force(_half_year_start(start), rates, start) + law.margin_bp)
            for start, end in _segments(first_late_day, as_of))

    exact = Fraction(0)
    for start, end, rate_bp in segments:
        if rate_bp < 0:
            raise ChargesError(f"negative interest rate ({rate_bp} bp) from {start.isoformat()}")
        days = (end - start).days + 1
        exact += Fraction(balance * rate_bp * days, BP_PER_UNIT * DAYS_PER_YEAR)

    # The indemnity is fixed in euros by D441-5. For another currency we would have to convert
    # 40 EUR at some date's exchange rate, which is out of scope: we claim no indemnity rather
    # than a made-up amount.
    indemnity = law.indemnity_eur_minor if currency == "EUR" else 0
    return Charges(_round_half_up(exact), indemnity, segments)
