"""Damaged statement files: cut, altered or random bytes give a StatementError (a 4xx for the API)
or lines, never another exception (a 500)."""
from __future__ import annotations

import io
import os

from bank_files import Entry, Tx, balance, camt, cfonb, complement, movement
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.gateways.bank import StatementError, read_statement

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "200"))

SEEDS = [
    camt([Entry("12.50", ref="A", txs=[Tx(name="ACME", ustrd=("F1",))]),
          Entry("3.00", ref="B", txs=[Tx("1.00"), Tx("2.00", ref="T")])], "053", 2),
    camt([Entry("7.00", direction="DBIT", txs=[Tx(name="X", iban="FR76", e2e="E")])], "054", 8),
    cfonb([balance("01", "301126", 0), movement("011226", 1250, "VIR", "R1"), complement("011226", "NPY", "ACME"),
           balance("07", "011226", 1250)]),
    cfonb([balance("01", "301126", 0), movement("011226", -50, "FRAIS"), balance("07", "011226", -50)], None),
    b":20:X\r\n:25:ACC\r\n:60F:C261201EUR0,00\r\n:61:2612021202C1,00NTRFNONREF//B1\r\n:86:?20F1?32ACME\r\n"
    b":61:261203D2,00NMSCNONREF\r\n:86:/NAME/X/REMI/Y\r\n:62F:D261203EUR1,00\r\n",
    b"OFXHEADER:100\r\nDATA:OFXSGML\r\nVERSION:102\r\nSECURITY:NONE\r\nENCODING:USASCII\r\nCHARSET:1252\r\n"
    b"COMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:NONE\r\n\r\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1"
    b"<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>EUR<BANKACCTFROM><BANKID>1<ACCTID>A1<ACCTTYPE>CHECKING"
    b"</BANKACCTFROM><BANKTRANLIST><DTSTART>20261201<DTEND>20261202<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261202"
    b"<TRNAMT>1.00<FITID>F1<NAME>N<MEMO>M</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\r\n",
]


def read_all(data: bytes) -> None:
    try:
        for _ in read_statement(io.BytesIO(data)).lines:
            pass
    except StatementError:
        pass


@st.composite
def damaged(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and data:
            data[at] = draw(st.sampled_from(b"0123456789,.-:?/<>&;{}JR \r\nAZ\xe9\x00"))
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=8))
        elif data:
            del data[at:at + draw(st.integers(1, 20))]
    return bytes(data)


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_files_give_a_statement_error_or_lines(data):
    read_all(data)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_give_a_statement_error(data):
    read_all(data)
