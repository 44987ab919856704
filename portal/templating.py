"""Jinja filters shared by pages, e-mails and PDFs: money and dates in the reader's locale.

Both are memoised per locale: a statement of 200 lines formats the same few dates and
amounts hundreds of times, and Babel's formatting dominates the page's cost otherwise.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from decimal import Decimal

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from flask import Flask, g
from flask_babel import get_locale
from jinja2 import pass_context

from .domain.long_dates import long_date
from .domain.money import format_money, to_decimal_string
from .services import charge_items


@lru_cache(maxsize=8192)
def _money(minor: int, currency: str, locale: str) -> str:
    return format_money(minor, currency, locale)


@lru_cache(maxsize=4096)
def _day(value: date, locale: str) -> str:
    return format_date(value, "medium", locale=locale)


@lru_cache(maxsize=64)
def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return timezone.utc


def creditor_time(value: datetime, zone: str, locale: str) -> str:
    """A stored UTC moment as the creditor reads it, in its time zone: "6 déc. 2026 20:10" /
    "Dec 6, 2026 8:10 PM" (the language's medium date, short time). A naive value (SQLite) is UTC,
    as everything stored is."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    local = value.astimezone(_zone(zone))
    return f"{format_date(local.date(), 'medium', locale=locale)} {format_time(local.timetz(), 'short', locale=locale)}"


def _locale() -> str:
    return str(get_locale() or "fr")


def install(app: Flask) -> None:
    # The locale is read once per render (the context processor's `lang`), not once per value.
    @app.template_filter("money")
    @pass_context
    def money(ctx, minor: int, currency: str) -> str:
        return _money(minor, currency, ctx.get("lang") or _locale())

    @app.template_filter("day")
    @pass_context
    def day(ctx, value) -> str:
        if not value:
            return ""
        if isinstance(value, str):  # an ISO date kept in an event's data
            value = date.fromisoformat(value)
        return _day(value.date() if hasattr(value, "date") else value, ctx.get("lang") or _locale())

    @app.template_filter("when")
    @pass_context
    def when(ctx, value) -> str:
        """A stored moment in the signed-in creditor's time zone (the back office); UTC elsewhere."""
        if not value:
            return ""
        if isinstance(value, str):  # an ISO moment kept in an event's data or a service's dict
            value = datetime.fromisoformat(value)
        creditor = g.get("creditor")
        return creditor_time(value, getattr(creditor, "timezone", None) or "UTC", ctx.get("lang") or _locale())

    @app.template_filter("long_day")
    @pass_context
    def long_day(ctx, value) -> str:
        """"14 décembre 2026" / "14 December 2026": how letters write a day (and their records)."""
        if not value:
            return ""
        day = date.fromisoformat(value) if isinstance(value, str) else value
        return long_date(day, "en" if (ctx.get("lang") or _locale()).startswith("en") else "fr")

    @app.template_filter("rate")
    @pass_context
    def rate(ctx, basis_points: int) -> str:
        """215 -> '2,15 %' in French, '2.15 %' in English."""
        return format_decimal(Decimal(basis_points) / 100, "0.00", locale=ctx.get("lang") or _locale()) + "\u00a0%"

    @app.template_filter("plain_amount")
    def plain_amount(minor: int, currency: str) -> str:
        """For an input's value: '1200.50', as the amount parser reads it back."""
        return to_decimal_string(minor, currency)

    @app.template_filter("iban")
    def iban(value: str) -> str:
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if value else ""

    # An open item's name for people: an invoice's number, "Late-payment charges — invoice F-1".
    app.add_template_filter(charge_items.label, "item_label")
    app.add_template_filter(charge_items.charged_number, "charged_number")
    app.add_template_global(charge_items.describe, "charges_label")

    @app.context_processor
    def lang():
        return {"lang": _locale()}
