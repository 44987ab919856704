"""Jinja filters shared by pages, e-mails and PDFs: money and dates in the reader's locale."""
from __future__ import annotations

from flask import Flask
from flask_babel import format_date, get_locale

from .domain.money import format_money


def install(app: Flask) -> None:
    @app.template_filter("money")
    def money(minor: int, currency: str) -> str:
        return format_money(minor, currency, str(get_locale() or "fr"))

    @app.template_filter("day")
    def day(value) -> str:
        return format_date(value, "medium") if value else ""

    @app.template_filter("iban")
    def iban(value: str) -> str:
        return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if value else ""

    @app.context_processor
    def lang():
        return {"lang": str(get_locale() or "fr")}
