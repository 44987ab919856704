"""Bank statements in general: the format told from the content, exact amounts, and identities that
stay the same between overlapping statements (tests per format: test_bank_camt.py,
test_bank_cfonb.py, test_bank_mt940_ofx.py)."""
from __future__ import annotations

import io
from datetime import date

import pytest
from bank_files import Entry, Tx, balance, camt, cfonb, complement, movement

from portal.gateways.bank import Identities, StatementError, minor_units, read_statement


class OneWay(io.RawIOBase):
    """A stream that cannot seek, as a request body or a pipe."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


CFONB = cfonb([balance("01", "301126", 0), movement("011226", 100, "VIR"), balance("07", "011226", 100)])
MT940 = b":20:X\r\n:25:ACC\r\n:60F:C261201EUR0,00\r\n:61:261202C1,00NTRFNONREF//B1\r\n:86:X\r\n:62F:C261202EUR1,00\r\n"
OFX = (b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\nCHARSET:1252\r\n"
       b"COMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1"
       b"<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>1<ACCTID>A1<ACCTTYPE>CHECKING"
       b"</BANKACCTFROM><BANKTRANLIST><DTSTART>20261201<DTEND>20261202<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261202"
       b"<TRNAMT>1.00<FITID>F1</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\r\n")


@pytest.mark.parametrize("data, expected", [
    (camt([Entry("1.00", ref="A")], "053", 2), "camt.053"),
    (camt([Entry("1.00", ref="A")], "054", 8), "camt.054"),
    (b"\xef\xbb\xbf" + camt([Entry("1.00", ref="A")], "053", 5), "camt.053"),
    (CFONB, "cfonb120"),
    (CFONB.replace(b"\r\n", b""), "cfonb120"),
    (MT940, "mt940"),
    (b"{1:F01BANKFRPPAXXX0000000000}{4:\r\n" + MT940 + b"-}", "mt940"),
    (OFX, "ofx"),
], ids=["camt053", "camt054", "bom", "cfonb", "cfonb-no-breaks", "mt940", "mt940-blocks", "ofx"])
def test_the_format_is_told_from_the_content(data, expected):
    for stream in (io.BytesIO(data), OneWay(data)):
        statement = read_statement(stream)
        assert statement.format == expected
        assert len(list(statement.lines)) == 1


@pytest.mark.parametrize("data", [
    b"", b"date;amount;label\n2026-12-01;12.00;VIR\n", b"%PDF-1.7\n", b"<html><body>statement</body></html>",
    b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>',
    b"01" + b"x" * 200,
], ids=["empty", "csv", "pdf", "html", "pain001", "short-garbage"])
def test_unknown_content_is_refused(data):
    with pytest.raises(StatementError, match="unknown format|neither camt"):
        read_statement(io.BytesIO(data))


def test_exact_minor_units():
    assert minor_units("1200.50", "EUR", "x") == 120050
    assert minor_units("1200,5", "EUR", "x") == 120050
    assert minor_units("-0.01", "EUR", "x") == -1
    assert minor_units("12", "JPY", "x") == 12
    assert minor_units("1.235", "KWD", "x") == 1235
    assert minor_units("99999999999999999.99", "EUR", "x") == 9999999999999999999
    with pytest.raises(StatementError, match="^Amt: EUR amounts have at most 2 decimals"):
        minor_units("1.001", "EUR", "Amt")
    with pytest.raises(StatementError, match="^Amt: unknown currency"):
        minor_units("1.00", "EURO", "Amt")
    with pytest.raises(StatementError, match="^Amt: not an amount"):
        minor_units("1e3", "EUR", "Amt")


def test_identical_rows_of_one_day_have_distinct_identities():
    rows = [movement("011226", 5000, "VIR SEPA CLIENT")] * 3 + [movement("021226", 5000, "VIR SEPA CLIENT")]
    data = cfonb([balance("01", "301126", 0), *rows, balance("07", "021226", 20000)])
    identities = [line.identity for line in read_statement(io.BytesIO(data)).lines]
    assert len(set(identities)) == 4
    assert all(identity.startswith("hash:") for identity in identities)


def test_overlapping_cfonb_statements_give_the_same_identities():
    """The second statement repeats the 2nd of December among other rows: its lines keep their
    identities though their positions in the file moved."""
    twice = [movement("021226", 5000, "VIR SEPA CLIENT"), complement("021226", "NPY", "DUPONT")] * 2
    first = cfonb([balance("01", "301126", 0), movement("011226", 700, "VIR A"), *twice,
                   movement("021226", -300, "FRAIS"), balance("07", "021226", 10400)])
    second = cfonb([balance("01", "011226", 700), movement("021226", 990, "VIR B"), *twice,
                    movement("021226", -300, "FRAIS"), movement("031226", 5000, "VIR SEPA CLIENT"),
                    balance("07", "031226", 16390)], None)
    one = {line.identity: line for line in read_statement(io.BytesIO(first)).lines}
    two = {line.identity: line for line in read_statement(io.BytesIO(second)).lines}
    common = set(one) & set(two)
    assert len(one) == 4 and len(two) == 5
    assert sorted((one[i].booking_date.day, one[i].amount) for i in common) == [(2, -300), (2, 5000), (2, 5000)]


def test_overlapping_camt_statements_without_references():
    def entry(amount, day, text):
        return Entry(amount, booked=f"2026-12-{day:02d}", txs=[Tx(ustrd=(text,), e2e="NOTPROVIDED")])

    first = camt([entry("10.00", 1, "F1"), entry("20.00", 2, "F2"), entry("20.00", 2, "F2")])
    second = camt([entry("5.00", 2, "F9"), entry("20.00", 2, "F2"), entry("20.00", 2, "F2"), entry("1.00", 3, "F3")])
    one = [line.identity for line in read_statement(io.BytesIO(first)).lines]
    two = [line.identity for line in read_statement(io.BytesIO(second)).lines]
    assert one[1:] == two[1:3] and len(set(one)) == 3


def test_the_end_to_end_id_is_never_an_identity_alone():
    data = camt([Entry("1.00", txs=[Tx(e2e="INV-1")]), Entry("1.00", txs=[Tx(e2e="INV-1")])])
    lines = list(read_statement(io.BytesIO(data)).lines)
    assert [line.end_to_end_id for line in lines] == ["INV-1", "INV-1"]
    assert all(line.identity.startswith("hash:") for line in lines)
    assert lines[0].identity != lines[1].identity


def test_identities_differ_by_account_amount_and_label():
    identities = Identities()
    day = date(2026, 12, 1)
    made = {identities(None, "A", day, 100, "EUR", "VIR"), identities(None, "B", day, 100, "EUR", "VIR"),
            identities(None, "A", day, 101, "EUR", "VIR"), identities(None, "A", day, 100, "EUR", "VIR X")}
    assert len(made) == 4
    # whitespace in the label is not a difference: banks re-wrap text
    assert Identities()(None, "A", day, 100, "EUR", "VIR  SEPA") == Identities()(None, "A", day, 100, "EUR", "VIR SEPA")
    assert identities("BQ-1", "A", day, 100, "EUR", "VIR") == "ref:BQ-1"
