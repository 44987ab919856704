"""The one CSV writer (portal/csv_export.py): every field quoted, no text cell a spreadsheet could
run as a formula whatever separator it splits on, numbers left as numbers."""
from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portal.csv_export import cell, to_csv

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r'^-?\d+(\.\d+)?$')


def test_cells():
    assert [cell(v) for v in ["=SUM(A1)", "+33 1 23", "-Martin", "@SUM(A1)", "\tTab", "\rCR", "ACME;=2+5;",
                              "Jean-Pierre", "O'Brien", "", None]] == [
        "'=SUM(A1)", "'+33 1 23", "'-Martin", "'@SUM(A1)", "'\tTab", "'\rCR", "ACME;'=2+5;",
        "Jean-Pierre", "O'Brien", "", ""]
    # Numbers are numbers: a negative amount is not a formula. Dates are ISO.
    assert [cell(v) for v in [Decimal("-12.50"), -3, 0, Decimal("1200.00"), date(2026, 3, 31)]] == [
        "-12.50", "-3", "0", "1200.00", "2026-03-31"]
    # ... but a text that only looks like one is still text.
    assert cell("-12.50") == "'-12.50"


def test_every_field_is_quoted():
    text = to_csv([["name", "amount"], ["ACME;=2+5;", Decimal("-1.00")], ['Say "hi"', 3]])
    assert text == '"name","amount"\r\n"ACME;\'=2+5;","-1.00"\r\n"Say ""hi""","3"\r\n'


def cells_as_split(text: str, delimiter: str, honour_quotes: bool) -> list[str]:
    if honour_quotes:
        return [c for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) for c in row]
    return [c.strip('"') for line in re.split(r"\r\n|\r|\n", text) for c in line.split(delimiter)]


@given(st.lists(st.text(alphabet=st.sampled_from(list("=+-@\t\r\n;,|\"' aZ1")), max_size=12), min_size=1, max_size=4))
def test_no_formula_whatever_the_separator(texts):
    text = to_csv([texts + [Decimal("-5.00")]])
    for delimiter in (",", ";", "\t", "|"):
        for honour_quotes in (True, False):
            for c in cells_as_split(text, delimiter, honour_quotes):
                c = c.lstrip(" ")
                assert not c.startswith(TRIGGERS) or NUMBER.match(c), (delimiter, honour_quotes, texts, c)
