"""Factur-X invoice PDFs written for the tests: a page from WeasyPrint and a CII XML written from
the Factur-X 1.0.07 / EN 16931 CII (D16B) layout, profile BASIC, embedded by the `factur-x`
library. A well-formed invoice is checked against the library's BASIC XSD as it is embedded; the
broken ones the tests need (a BT missing, a bad date) are embedded unchecked."""
from __future__ import annotations

from decimal import Decimal
from html import escape

import io

import facturx
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

BASIC = "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic"


def page_pdf(text: str = "Facture") -> bytes:
    return HTML(string=f"<html><body><h1>{escape(text)}</h1></body></html>").write_pdf()


def _party(name, party_id=None, legal_id=None, email=None, vat=None, scheme="0002"):
    out = f"<ram:ID>{escape(party_id)}</ram:ID>" if party_id else ""
    out += f"<ram:Name>{escape(name)}</ram:Name>" if name is not None else ""
    if legal_id:
        out += (f'<ram:SpecifiedLegalOrganization><ram:ID schemeID="{scheme}">{escape(legal_id)}</ram:ID>'
                "</ram:SpecifiedLegalOrganization>")
    out += "<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
    if email:
        out += f'<ram:URIUniversalCommunication><ram:URIID schemeID="EM">{escape(email)}</ram:URIID></ram:URIUniversalCommunication>'
    if vat:
        out += f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{escape(vat)}</ram:ID></ram:SpecifiedTaxRegistration>'
    return out


def cii_xml(number="FA-2026-001", *, type_code="380", issue="20261001", due="20261031", currency="EUR",
            net="1000.00", prepaid=None, buyer_id="CLI-42", buyer_name="Boulangerie Martin SARL",
            buyer_siren="552100554", buyer_email="compta@boulangerie-martin.test", seller_siren="732829320",
            seller_vat="FR44732829320", omit=(), due_format="102") -> bytes:
    """A BASIC-profile CII invoice: one line at 20 % VAT; BT-115 is the gross total less `prepaid`.
    `omit` leaves out elements by their BT: "BT-1", "BT-2", "BT-115"…"""
    net_d = Decimal(net)
    tax = (net_d * Decimal("0.20")).quantize(Decimal("0.01"))
    gross = net_d + tax
    due_payable = gross - Decimal(prepaid or "0")
    doc_id = "" if "BT-1" in omit else f"<ram:ID>{escape(number)}</ram:ID>"
    issue_el = "" if "BT-2" in omit else (
        f'<ram:IssueDateTime><udt:DateTimeString format="102">{issue}</udt:DateTimeString></ram:IssueDateTime>')
    terms = "" if due is None else (
        "<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>"
        f'<udt:DateTimeString format="{due_format}">{due}</udt:DateTimeString>'
        "</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>")
    prepaid_el = f"<ram:TotalPrepaidAmount>{prepaid}</ram:TotalPrepaidAmount>" if prepaid else ""
    due_el = "" if "BT-115" in omit else f"<ram:DuePayableAmount>{due_payable}</ram:DuePayableAmount>"
    currency_el = "" if "BT-5" in omit else f"<ram:InvoiceCurrencyCode>{currency}</ram:InvoiceCurrencyCode>"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{BASIC}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>{doc_id}<ram:TypeCode>{type_code}</ram:TypeCode>{issue_el}</rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedTradeProduct><ram:Name>Prestation de conseil</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{net_d}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
        <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{net_d}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>{_party("Atelier Test", legal_id=seller_siren, vat=seller_vat)}</ram:SellerTradeParty>
      <ram:BuyerTradeParty>{_party(buyer_name, buyer_id, buyer_siren, buyer_email)}</ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      {currency_el}
      <ram:ApplicableTradeTax><ram:CalculatedAmount>{tax}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{net_d}</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
      {terms}
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>{net_d}</ram:LineTotalAmount><ram:TaxBasisTotalAmount>{net_d}</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="{currency}">{tax}</ram:TaxTotalAmount><ram:GrandTotalAmount>{gross}</ram:GrandTotalAmount>
        {prepaid_el}{due_el}
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""
    return xml.encode()


def facturx_pdf(xml: bytes | None = None, *, check_xsd: bool = True, **fields) -> bytes:
    """A Factur-X PDF: a WeasyPrint page with `xml` (default: cii_xml(**fields)) embedded as
    factur-x.xml. check_xsd=False for the broken ones."""
    xml = xml if xml is not None else cii_xml(**fields)
    return facturx.generate_from_binary(page_pdf(fields.get("number", "Facture")), xml, flavor="factur-x",
                                        level="basic", check_xsd=check_xsd)


def attached(content: bytes, name: str = "factur-x.xml") -> bytes:
    """A WeasyPrint page with `content` attached as is, by pypdf: for XML the library would not
    embed (not well-formed, BT-2 missing)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(page_pdf())))
    writer.add_attachment(name, content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
