"""Dates as a letter writes them: the long format of the reader's language, and nothing else.

"6 décembre 2026" / "6 December 2026" (British order: Babel's "en" long format is the American
"December 6, 2026"), with the French ordinal "1er" for the first of a month.
"""
from __future__ import annotations

from datetime import date

from babel.dates import format_date

_LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def long_date(day: date, lang: str) -> str:
    text = format_date(day, "long", locale=_LOCALES.get(lang, "fr_FR"))
    if lang == "fr" and day.day == 1:
        text = "1er" + text[1:]
    return text


def dates_phrase(days: list[date], lang: str) -> str:
    """The dates after a noun: "du 12 novembre 2026 et du 19 novembre 2026" /
    "of 12 November 2026 and 19 November 2026" (each one whole, so no date reads in another format)."""
    if not days:
        return ""
    if lang == "fr":
        parts, joiner = [f"du {long_date(d, lang)}" for d in days], " et "
    else:
        parts, joiner = [long_date(d, lang) for d in days], " and "
        parts[0] = "of " + parts[0]
    return ", ".join(parts[:-1]) + joiner + parts[-1] if len(parts) > 1 else parts[0]
