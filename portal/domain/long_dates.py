"""Dates as a letter writes them: the long format of the reader's language ("1er novembre 2026",
"19 November 2026"), and several days in one phrase ("12 et 19 novembre 2026",
"28 October and 4 November 2026") for the reminders a message recalls."""
from __future__ import annotations

from datetime import date

from babel.dates import format_date

#: British order for English ("19 November 2026"), as French writes it; Babel's "en" long format
#: is American ("November 19, 2026")
_LOCALES = {"fr": "fr", "en": "en_GB"}
_AND = {"fr": " et ", "en": " and "}


def _locale(lang: str) -> str:
    return _LOCALES.get(lang, lang)


def _day_number(day: date, lang: str) -> str:
    return "1er" if lang == "fr" and day.day == 1 else str(day.day)  # French: "1er novembre"


def long_date(day: date, lang: str) -> str:
    if lang not in _AND:
        return format_date(day, "long", locale=lang)
    return f"{_day_number(day, lang)} {format_date(day, 'MMMM', locale=_locale(lang))} {day.year}"


def day_list(days: list[date], lang: str) -> str:
    """Days in order, the month and year said once for the days that share them."""
    days = sorted(set(days))
    parts = []
    for i, day in enumerate(days):
        nxt = days[i + 1] if i + 1 < len(days) else None
        if nxt is not None and (nxt.year, nxt.month) == (day.year, day.month):
            parts.append(_day_number(day, lang))
        elif nxt is not None and nxt.year == day.year:
            parts.append(_day_number(day, lang) + " " + format_date(day, "MMMM", locale=_locale(lang)))
        else:
            parts.append(long_date(day, lang))
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + _AND.get(lang, " & ") + parts[-1]


def dates_after_noun(days: list[date], lang: str) -> str:
    """"des 12 et 19 novembre 2026" / "du 12 novembre 2026" / "of 12 and 19 November 2026": the
    dates after "nos relances" in a letter, worded as its e-mail words them (day_list)."""
    if not days:
        return ""
    if lang == "fr":
        return ("du " if len(set(days)) == 1 else "des ") + day_list(days, lang)
    return "of " + day_list(days, lang)
