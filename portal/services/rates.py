"""Late-payment rates: the dated ECB reference table (read by every creditor, written by the
operator only) and the creditor's own terms."""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from ..extensions import db
from ..models import Creditor, ReferenceRate
from . import Invalid, events


def table() -> list[ReferenceRate]:
    return list(db.session.scalars(select(ReferenceRate).order_by(ReferenceRate.effective_from.desc())))


def _basis_points(text, field: str) -> int:
    """'2.15' (percent) -> 215. Two decimals at most: the ECB publishes rates that way."""
    try:
        value = Decimal(str(text).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise Invalid("a rate in percent is required, like 2.15", field) from None
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(100) or value != value.quantize(Decimal("0.01")):
        raise Invalid("a rate in percent between 0 and 100, two decimals at most", field)
    return int(value * 100)


def set_reference_rate(effective_from: date, rate_percent) -> int | None:
    """Set the ECB rate of a half-year, adding it or correcting it; the previous rate in basis
    points (None: the half-year was new). The table is reference data shared by every creditor:
    the migrations seed it and only the operator's command line (`rates set`) calls this, never a
    creditor's request. No event: events belong to a creditor, and this belongs to none."""
    if (effective_from.month, effective_from.day) not in ((1, 1), (7, 1)):
        raise Invalid("the rate in force on 1 January or 1 July applies to a half-year", "effective_from")
    rate_bp = _basis_points(rate_percent, "rate")
    row = db.session.scalar(select(ReferenceRate).where(ReferenceRate.effective_from == effective_from))
    previous = row.rate_bp if row else None
    if row is None:
        db.session.add(ReferenceRate(effective_from=effective_from, rate_bp=rate_bp))
    else:
        row.rate_bp = rate_bp
    db.session.commit()
    return previous


def set_terms(creditor: Creditor, contractual_percent, formal_notice_days, user: str) -> None:
    """The creditor's contractual late-payment rate (blank = ECB + 10 points) and the days a
    formal notice gives to pay."""
    bp = None if str(contractual_percent or "").strip() == "" else _basis_points(contractual_percent, "rate")
    try:
        days = int(formal_notice_days)
    except (TypeError, ValueError):
        raise Invalid("a whole number of days is required", "formal_notice_days") from None
    if not 1 <= days <= 90:
        raise Invalid("between 1 and 90 days", "formal_notice_days")
    creditor.late_interest_bp, creditor.formal_notice_days = bp, days
    events.record("creditor.terms_updated", creditor_id=creditor.id, actor="creditor", user=user,
                  late_interest_bp=bp, formal_notice_days=days)
    db.session.commit()
