"""gateways/facturx: a Factur-X PDF in, the invoice's payment facts out; files written here from
the Factur-X 1.0.07 BASIC layout (tests/facturx_files.py)."""
from __future__ import annotations

from datetime import date

import pytest

from facturx_files import attached, cii_xml, facturx_pdf, page_pdf
from portal.gateways.facturx import FacturXError, parse_cii, read_pdf


def test_the_facts_of_an_invoice():
    facts = read_pdf(facturx_pdf(prepaid="150.50"))
    assert facts.number == "FA-2026-001" and facts.type_code == "380" and not facts.is_credit_note
    assert (facts.issue_date, facts.due_date) == (date(2026, 10, 1), date(2026, 10, 31))
    assert (facts.currency, facts.amount_due) == ("EUR", 120000 - 15050)  # BT-115: gross less prepaid
    assert (facts.buyer_name, facts.buyer_id, facts.buyer_legal_id, facts.buyer_email) == (
        "Boulangerie Martin SARL", "CLI-42", "552100554", "compta@boulangerie-martin.test")
    assert (facts.seller_legal_id, facts.seller_vat) == ("732829320", "FR44732829320")
    assert facts.profile.endswith("factur-x.eu:1p0:basic")


def test_optional_terms_may_be_absent():
    facts = read_pdf(facturx_pdf(due=None, buyer_id=None, buyer_email=None, buyer_siren="552 100 554 00013"))
    assert facts.due_date is None and facts.buyer_id is None and facts.buyer_email is None
    assert facts.buyer_legal_id == "55210055400013"  # printed with spaces, compared without


def test_buyer_global_id_and_an_electronic_address_that_is_no_email():
    xml = cii_xml(buyer_id=None, buyer_email=None).replace(
        b"<ram:Name>Boulangerie", b'<ram:GlobalID schemeID="0088">3012345678901</ram:GlobalID><ram:Name>Boulangerie')
    xml = xml.replace(b'<ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress></ram:BuyerTradeParty>',
                      b'<ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress><ram:URIUniversalCommunication>'
                      b'<ram:URIID schemeID="0225">552100554</ram:URIID></ram:URIUniversalCommunication>'
                      b'</ram:BuyerTradeParty>')
    facts = parse_cii(xml)
    assert facts.buyer_id == "3012345678901" and facts.buyer_email is None


def test_credit_notes_are_recognised():
    assert read_pdf(facturx_pdf(type_code="381")).is_credit_note
    assert parse_cii(cii_xml(type_code="261")).is_credit_note  # self-billed credit note
    assert not parse_cii(cii_xml(type_code="384")).is_credit_note  # corrected invoice


def test_a_negative_amount_due_keeps_its_sign():
    xml = cii_xml().replace(b"<ram:DuePayableAmount>1200.00<", b"<ram:DuePayableAmount>-12.5<")
    assert parse_cii(xml).amount_due == -1250


def test_a_pdf_without_factur_x_is_none():
    assert read_pdf(page_pdf()) is None
    assert read_pdf(b"%PDF-1.4 damaged") is None
    assert read_pdf(attached(b"<note>another attachment</note>", "notes.xml")) is None


@pytest.mark.parametrize("bt", ["BT-1", "BT-2", "BT-5", "BT-115"])
def test_a_missing_mandatory_term_is_named(bt):
    with pytest.raises(FacturXError) as e:
        read_pdf(attached(cii_xml(omit=(bt,))))
    assert e.value.bt == bt and str(e.value).startswith(bt)


@pytest.mark.parametrize("change, bt", [
    ({"due": "2026-10-31"}, "BT-9"),  # not format 102
    ({"due": "20261031", "due_format": "610"}, "BT-9"),
    ({"issue": "20260231"}, "BT-2"),  # no such day
    ({"currency": "EURO"}, "BT-5"),
    ({"net": "10.005"}, "BT-115"),  # more decimals than the euro has
])
def test_a_bad_value_is_named(change, bt):
    with pytest.raises(FacturXError) as e:
        parse_cii(cii_xml(**change))
    assert e.value.bt == bt


def test_a_broken_factur_x_xml_is_an_error_not_a_plain_pdf():
    with pytest.raises(FacturXError, match="not a well-formed CII invoice"):
        read_pdf(attached(b"<rsm:CrossIndustryInvoice><unclosed"))
    with pytest.raises(FacturXError, match="not well-formed"):
        parse_cii(b"<a><b></a>")
    with pytest.raises(FacturXError, match="not a CII invoice"):
        parse_cii(b"<Invoice/>")


def test_no_entity_and_no_dtd_is_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    for doctype in (f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>',
                    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'):
        xml = cii_xml(number="&e;").replace(b"?>\n", f"?>\n{doctype}\n".encode(), 1)
        for read in (parse_cii, lambda x: read_pdf(attached(x))):  # the library reads it first, then us
            with pytest.raises(FacturXError) as e:
                read(xml)
            assert "TOP-SECRET" not in str(e.value) and "DOCTYPE" in str(e.value)


def test_the_totals_without_vat_and_of_vat():
    """BT-109 and BT-110, in minor units: 1000.00 without VAT, 200.00 of VAT (20 %)."""
    facts = read_pdf(facturx_pdf(net="1000.00"))
    assert (facts.amount_excl_tax, facts.tax_amount) == (100000, 20000)


def test_the_vat_total_is_the_one_in_the_invoice_currency():
    """A second TaxTotalAmount (BT-111) gives the VAT in the accounting currency: not read."""
    xml = cii_xml(net="1000.00", currency="USD").replace(
        b'<ram:TaxTotalAmount currencyID="USD">200.00</ram:TaxTotalAmount>',
        b'<ram:TaxTotalAmount currencyID="EUR">185.00</ram:TaxTotalAmount>'
        b'<ram:TaxTotalAmount currencyID="USD">200.00</ram:TaxTotalAmount>')
    assert b'currencyID="EUR">185.00' in xml
    facts = parse_cii(xml)
    assert (facts.currency, facts.amount_excl_tax, facts.tax_amount) == ("USD", 100000, 20000)


def test_totals_absent_are_none_and_bad_ones_name_their_bt():
    xml = cii_xml(net="1000.00")
    bare = xml.replace(b"<ram:TaxBasisTotalAmount>1000.00</ram:TaxBasisTotalAmount>", b"").replace(
        b'<ram:TaxTotalAmount currencyID="EUR">200.00</ram:TaxTotalAmount>', b"")
    facts = parse_cii(bare)
    assert (facts.amount_excl_tax, facts.tax_amount, facts.amount_due) == (None, None, 120000)
    with pytest.raises(FacturXError) as e:
        parse_cii(xml.replace(b"<ram:TaxBasisTotalAmount>1000.00<", b"<ram:TaxBasisTotalAmount>1 000<"))
    assert e.value.bt == "BT-109"
