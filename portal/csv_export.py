"""The one way Relance writes a CSV file for a spreadsheet (every export uses it).

Every field is quoted, so a separator inside a text (a name like ``ACME;=2+5;``) stays in its
cell for a spreadsheet that honours quotes. A text cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return would be read as a formula: it gets a leading single quote
(OWASP's advice on CSV injection). Whatever the separator: a French spreadsheet opening the file
may split on semicolons, and a parser that ignores quotes on any of them, so the same quote goes
before such a character wherever it follows a separator, a quote or a line break inside the text
(``ACME;'=2+5;``). Numbers are given as numbers (int or Decimal) and written as they are: a
negative amount is not a formula.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal
from typing import Iterable, Sequence

FORMULA_START = "=+-@\t\r"
# A formula character at the start of the text, or after anything a spreadsheet might start a
# cell after (a separator: comma, semicolon, tab, pipe; a quote; a line break) and any spaces.
_CELL_STARTS = re.compile(rf"(?:^|(?<=[,;\t|\"'\r\n]))[ ]*(?=[{re.escape(FORMULA_START)}])")


def cell(value) -> str:
    """One field's text: numbers and dates as they are, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return _CELL_STARTS.sub(lambda m: m.group(0) + "'", str(value))


def to_csv(rows: Iterable[Sequence]) -> str:
    """The rows (the header first) as CSV text, CRLF line ends, every field quoted."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()
