"""MT940 (SWIFT customer statement message) and OFX (1.0.2 SGML, 2.1.1 XML), from files written here."""
from __future__ import annotations

import io
from datetime import date

import pytest

from portal.gateways.bank import StatementError, read_statement


def lines(data: bytes, expected_format: str):
    statement = read_statement(io.BytesIO(data))
    assert statement.format == expected_format
    return list(statement.lines)


def mt940(*transactions: str, envelope: bool = False, closing: str = "C261205EUR2188,50") -> bytes:
    body = "\r\n".join([":20:REL20261205", ":25:30004/00031/00012345678", ":28C:00042/001",
                        ":60F:C261201EUR1000,00", *transactions, f":62F:{closing}"])
    if envelope:
        body = "{1:F01BNPAFRPPAXXX0000000000}{2:O9400800261205BNPAFRPPAXXX00000000002612050800N}{4:\r\n" + body + "\r\n-}"
    return (body + "\r\n").encode("latin-1")


CREDIT_SUBFIELDS = ":61:2612021202C1200,50NTRFNONREF//BQ0001\r\n" \
                   ":86:166?00VIREMENT SEPA?20FACTURE F230866 ET?21 F230765?22RF18539007547034\r\n" \
                   "?32ACME SARL?31FR7630004000031234567890143"
CREDIT_KEYWORDS = ":61:2612031203C3,00NTRFNONREF//BQ0002\r\n" \
                  ":86:/EREF/E2E-778/NAME/DUPONT ET FILS/REMI/USTD//FACTURE F230\r\n900/IBAN/FR7610107001011234567890129"
DEBIT_FREE = ":61:2612041204D15,00NCHGNONREF\r\n:86:FRAIS TENUE DE COMPTE DECEMBRE"


@pytest.mark.parametrize("envelope", [False, True], ids=["bare", "swift-blocks"])
def test_mt940_statement_lines(envelope):
    credit, keywords, debit = lines(mt940(CREDIT_SUBFIELDS, CREDIT_KEYWORDS, DEBIT_FREE, envelope=envelope), "mt940")
    assert credit.account == "30004/00031/00012345678"
    assert (credit.booking_date, credit.value_date, credit.amount, credit.currency) == (
        date(2026, 12, 2), date(2026, 12, 2), 120050, "EUR")
    assert credit.counterparty == "ACME SARL"
    assert credit.counterparty_account == "FR7630004000031234567890143"
    assert credit.remittance == "FACTURE F230866 ET F230765 RF18539007547034"
    assert credit.structured_reference == "RF18539007547034"
    assert (credit.bank_reference, credit.identity) == ("BQ0001", "ref:BQ0001")
    assert (keywords.counterparty, keywords.end_to_end_id) == ("DUPONT ET FILS", "E2E-778")
    # a :86: line break inside a word is the bank's line length, not a space
    assert keywords.remittance == "FACTURE F230900"
    assert keywords.counterparty_account == "FR7610107001011234567890129"
    assert (debit.amount, debit.remittance, debit.bank_reference) == (-1500, "FRAIS TENUE DE COMPTE DECEMBRE", None)
    assert debit.identity.startswith("hash:")


def test_mt940_entry_date_differs_from_value_date():
    [line] = lines(mt940(":61:2612051204C10,00NTRFNONREF//BQ9\r\n:86:X"), "mt940")
    assert (line.booking_date, line.value_date) == (date(2026, 12, 4), date(2026, 12, 5))


def test_mt940_a_bad_statement_line_names_its_line():
    data = mt940(CREDIT_SUBFIELDS, ":61:26120X1203C3,00NTRFNONREF//BQ0002\r\n:86:X")
    with pytest.raises(StatementError, match=r"^line 8: not a :61: line"):
        lines(data, "mt940")


def test_mt940_a_bad_amount_names_its_line():
    data = mt940(CREDIT_SUBFIELDS, ":61:2612031203CABC,00NTRFNONREF//BQ0002\r\n:86:X")
    with pytest.raises(StatementError, match=r"^line 8: "):
        lines(data, "mt940")


OFX_V1 = """OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20261205080000<LANGUAGE>FRA</SONRS></SIGNONMSGSRSV1>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>EUR
<BANKACCTFROM><BANKID>30004<BRANCHID>00031<ACCTID>00012345678<ACCTTYPE>CHECKING</BANKACCTFROM>
<BANKTRANLIST><DTSTART>20261201<DTEND>20261205
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261202000000[+1:CET]<TRNAMT>1200.50<FITID>FIT0001<NAME>ACME SARL<MEMO>FACTURE F230866 RF18539007547034</STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261203<TRNAMT>{debit}<FITID>FIT0002<NAME>PRLV ORANGE</STMTTRN>
</BANKTRANLIST><LEDGERBAL><BALAMT>2185.50<DTASOF>20261205</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1>
</OFX>
"""

OFX_V2 = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?OFX OFXHEADER="200" VERSION="211" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<DTSERVER>20261205080000</DTSERVER><LANGUAGE>FRA</LANGUAGE></SONRS></SIGNONMSGSRSV1>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<STMTRS><CURDEF>EUR</CURDEF><BANKACCTFROM><BANKID>30004</BANKID><ACCTID>00012345678</ACCTID>
<ACCTTYPE>CHECKING</ACCTTYPE></BANKACCTFROM><BANKTRANLIST><DTSTART>20261201</DTSTART><DTEND>20261205</DTEND>
<STMTTRN><TRNTYPE>CREDIT</TRNTYPE><DTPOSTED>20261202</DTPOSTED><TRNAMT>99.90</TRNAMT><FITID>FIT0003</FITID>
<PAYEE><NAME>DUPONT ET FILS</NAME><ADDR1>1 RUE X</ADDR1><CITY>PARIS</CITY><STATE>75</STATE><POSTALCODE>75001</POSTALCODE></PAYEE>
<MEMO>F230900</MEMO><CURRENCY><CURRATE>1.0</CURRATE><CURSYM>CHF</CURSYM></CURRENCY></STMTTRN>
</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
"""


def test_ofx_v1_sgml():
    credit, debit = lines(OFX_V1.format(debit="-15.00").encode("latin-1"), "ofx")
    assert (credit.account, credit.amount, credit.currency) == ("00012345678", 120050, "EUR")
    # the bank's calendar day, whatever its time zone
    assert credit.booking_date == date(2026, 12, 2)
    assert (credit.counterparty, credit.remittance) == ("ACME SARL", "FACTURE F230866 RF18539007547034")
    assert credit.structured_reference == "RF18539007547034"
    assert (credit.bank_reference, credit.identity) == ("FIT0001", "ref:FIT0001")
    assert (debit.amount, debit.counterparty, debit.remittance) == (-1500, "PRLV ORANGE", "PRLV ORANGE")


def test_ofx_v1_decimal_comma():
    _, debit = lines(OFX_V1.format(debit="-15,00").encode("latin-1"), "ofx")
    assert debit.amount == -1500


def test_ofx_v2_xml_with_payee_and_currency():
    [line] = lines(OFX_V2.encode(), "ofx")
    assert (line.amount, line.currency, line.counterparty, line.remittance) == (9990, "CHF", "DUPONT ET FILS", "F230900")


def test_ofx_a_bad_amount_names_its_element():
    with pytest.raises(StatementError, match=r"^STMTRS\[1\]/STMTTRN\[2\]/TRNAMT: not an amount"):
        lines(OFX_V1.format(debit="-15.0.0").encode("latin-1"), "ofx")


def test_ofx_a_bad_date_names_its_element():
    data = OFX_V1.format(debit="-15.00").replace("<DTPOSTED>20261203", "<DTPOSTED>20261303").encode("latin-1")
    with pytest.raises(StatementError, match=r"^STMTRS\[1\]/STMTTRN\[2\]/DTPOSTED: not an OFX date"):
        lines(data, "ofx")


def test_ofx_truncated():
    data = OFX_V1.format(debit="-15.00").encode("latin-1")
    with pytest.raises(StatementError, match="truncated"):
        lines(data[:700], "ofx")


def test_mt940_subfields_of_27_characters_run_on():
    data = mt940(":61:2612021202C1,00NTRFNONREF//BQ7\r\n:86:166?00VIR?20VIREMENT DE LA SOCIETE DUPO?21NT POUR LA FACTURE F230866")
    [line] = lines(data, "mt940")
    assert line.remittance == "VIREMENT DE LA SOCIETE DUPONT POUR LA FACTURE F230866"


@pytest.mark.parametrize("bad, line, message", [
    (":61:2613021302C1,00NTRFNONREF//BQ7", 5, r":61: has no valid date YYMMDD: '261302'"),
    (":60M:C2612X1EUR1,00", 5, r"not a :60M: line \(C or D, YYMMDD"),
], ids=["bad-date", "bad-balance"])
def test_mt940_malformed_lines(bad, line, message):
    data = mt940(bad + "\r\n:86:X")
    with pytest.raises(StatementError, match=rf"^line {line}: {message}"):
        lines(data, "mt940")


def test_mt940_a_statement_without_its_opening_balance():
    data = b":20:X\r\n:25:ACC\r\n:61:261202C1,00NTRFNONREF//B1\r\n:86:X\r\n"
    with pytest.raises(StatementError, match=r"^line 3: a statement line without an amount or a currency"):
        lines(data, "mt940")


def test_mt940_two_statements_of_two_accounts():
    second = (":20:REL2\r\n:25:FR7630004000031234567890143\r\n:28C:00001/001\r\n:60F:C261201EUR0,00\r\n"
              ":61:2612021202C7,00NTRFNONREF//BQ0100\r\n:86:F9\r\n:62F:C261202EUR7,00\r\n").encode()
    found = lines(mt940(DEBIT_FREE, closing="C261205EUR985,00") + second, "mt940")
    assert [(line.account, line.amount) for line in found] == [
        ("30004/00031/00012345678", -1500), ("FR7630004000031234567890143", 700)]
