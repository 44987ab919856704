"""Invoices given as Factur-X PDFs (issue 16): through `PUT /invoices/{number}` with `pdf_base64`,
or several at once from the back office. The CII XML inside (gateways/facturx) gives the number,
dates, amount due (BT-115), currency and debtor, the totals without VAT and of VAT (BT-109,
BT-110) when given; the PDF becomes the invoice's document.

- API: a field the JSON gives must agree with the XML (else 422 naming the field and both
  values); a field it leaves out is taken from the XML. A PDF without Factur-X XML, or no PDF,
  goes the usual way (ledger.upsert_invoice), unchanged.
- Due date: BT-9, else the issue date plus the creditor's payment terms.
- Debtor, when the JSON names none: the first debtor whose ref is the buyer identifier (BT-46),
  the buyer's SIREN/SIRET as written (BT-47), or the SIREN a SIRET starts with; none: one is
  created from the buyer's name (BT-44) and e-mail (BT-49, scheme EM) under the first of those
  references; no name or no usable reference: 422, create the debtor first. A debtor_ref the
  JSON gives must exist, as before; it must equal BT-46 when the XML has one (a BT-46 that is no
  valid reference, such as "CLI 42", is ignored, as if absent).
- Refused: credit notes (BT-3 381 and the other UNTDID 1001 credit-note codes), an amount due
  of zero or less, an invoice whose seller (BT-30 SIREN, BT-31 VAT number) is not the creditor
  when the creditor's own are on file.
- Back office: each file in its own transaction, each with its outcome (created, updated or
  refused with its reason): one bad file never holds back the good ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from sqlalchemy import select

from ..domain.money import to_decimal_string
from ..extensions import db
from ..gateways.facturx import FacturX, FacturXError, read_pdf
from ..models import Creditor, Debtor, Invoice
from . import Invalid, ServiceError
from .checks import REF, amount_of, check_date, check_email, check_name, check_ref, currency_of
from .debtors import DebtorInput, _put_debtor, commit_or_conflict
from .ledger import MAX_PDF_BYTES, _put_invoice, check_invoice, check_pdf, upsert_invoice

#: files one back-office upload takes (the request is also capped by MAX_CONTENT_LENGTH)
MAX_FILES = 50
CREATED, UPDATED, REFUSED = "created", "updated", "refused"


class FacturXInvalid(Invalid):
    """A 422 about the Factur-X content; `bt` names the business term at fault, if one is."""

    def __init__(self, message: str, field: str | None = "pdf_base64", code: str = "facturx_invalid",
                 bt: str | None = None, **params):
        super().__init__(message, field, code)
        self.bt = bt
        self.params = params


@dataclass
class Outcome:
    """One uploaded file: what became of it."""
    filename: str
    status: str  # CREATED, UPDATED or REFUSED
    number: str | None = None
    debtor_ref: str | None = None
    #: for a refusal: the error's code, its English message, and the BT and values it names
    code: str | None = None
    message: str | None = None
    bt: str | None = None
    params: dict | None = None


def put_invoice(creditor: Creditor, number, data, actor: str = "api") -> tuple[Invoice, bool]:
    """PUT /invoices/{number}: a Factur-X PDF fills and checks the fields; anything else as before."""
    pdf = _decoded_pdf(data)
    facts = _read(pdf) if pdf is not None else None
    if facts is None:
        return upsert_invoice(creditor, number, data, actor)  # today's path, today's answers
    number = check_ref(number, "number")
    invoice, created = _put(creditor, number, data, pdf, facts, actor)
    commit_or_conflict()
    return invoice, created


def import_pdfs(creditor: Creditor, files: Iterable[tuple[str, bytes]], actor: str) -> list[Outcome]:
    """The back office's upload: every file on its own, committed or rolled back alone.
    `files` holds (name, content) with content read up to MAX_PDF_BYTES + 1."""
    outcomes = []
    for n, (filename, content) in enumerate(files):
        filename = (filename or "")[:200]
        if n >= MAX_FILES:
            outcomes.append(Outcome(filename, REFUSED, code="too_many_files",
                                    message=f"at most {MAX_FILES} files at once", params={"most": MAX_FILES}))
            continue
        try:
            invoice, created = _import_one(creditor, content, actor)
        except ServiceError as e:
            db.session.rollback()
            outcomes.append(Outcome(filename, REFUSED, code=e.code, message=e.message, bt=getattr(e, "bt", None),
                                    params=getattr(e, "params", None)))
        else:
            outcomes.append(Outcome(filename, CREATED if created else UPDATED, invoice.number,
                                    invoice.debtor.ref))
    return outcomes


def _import_one(creditor: Creditor, content: bytes, actor: str) -> tuple[Invoice, bool]:
    if len(content) > MAX_PDF_BYTES:
        raise FacturXInvalid(f"the file is larger than {MAX_PDF_BYTES // (1024 * 1024)} MB", "file",
                             "file_too_large")
    if not content.startswith(b"%PDF-"):
        raise FacturXInvalid("the file is not a PDF", "file", "not_pdf")
    facts = _read(content)
    if facts is None:
        raise FacturXInvalid("this PDF carries no Factur-X invoice (no factur-x.xml inside)", "file", "no_facturx")
    invoice, created = _put(creditor, facts.number, {}, content, facts, actor)
    commit_or_conflict()
    return invoice, created


def _decoded_pdf(data) -> bytes | None:
    """The PDF the body carries, if it is one; a bad pdf_base64 is ledger.check_invoice's to
    refuse, in the order it checks fields."""
    if not isinstance(data, dict) or data.get("pdf_base64") is None:
        return None
    try:
        return check_pdf(data["pdf_base64"])
    except Invalid:
        return None


def _read(pdf: bytes) -> FacturX | None:
    try:
        return read_pdf(pdf)
    except FacturXError as e:
        raise FacturXInvalid(f"the Factur-X XML cannot be used: {e}", bt=e.bt, detail=e.message) from None


def _mismatch(field: str, given, bt: str, found) -> FacturXInvalid:
    return FacturXInvalid(f"{field} {given} differs from the Factur-X invoice's {bt} ({found})", field,
                          "facturx_mismatch", bt, given=str(given), found=str(found))


def _put(creditor: Creditor, number: str, data: dict, pdf: bytes, facts: FacturX, actor: str) -> tuple[Invoice, bool]:
    """Check the XML's facts, and the JSON's fields against them; write the invoice (and its
    debtor when new) in the session. The caller commits."""
    if facts.is_credit_note:
        raise FacturXInvalid(f"this Factur-X document is a credit note (BT-3 type code {facts.type_code}): "
                             "credit notes are not accepted yet; change the invoice's amount instead",
                             code="credit_note_unsupported", bt="BT-3", type_code=facts.type_code)
    _check_seller(creditor, facts)
    if not REF.fullmatch(facts.number):
        raise FacturXInvalid(f"BT-1 (invoice number) {facts.number!r} cannot be used: 1-64 letters, digits, '.', "
                             "'_', '-' or '/', starting with a letter or digit", bt="BT-1", value=facts.number)
    if facts.number != number:
        raise _mismatch("number", number, "BT-1", facts.number)
    try:
        currency = currency_of(facts.currency)
    except Invalid as e:
        raise FacturXInvalid(f"BT-5 (currency): {e.message}", bt="BT-5", detail=e.message) from None
    if facts.amount_due <= 0:
        shown = to_decimal_string(facts.amount_due, currency)
        raise FacturXInvalid(f"BT-115 (amount due for payment) is {shown}: there is nothing to collect",
                             code="facturx_nothing_due", bt="BT-115", amount=shown)
    if facts.due_date is not None and facts.due_date < facts.issue_date:
        raise FacturXInvalid("BT-9 (payment due date) is before BT-2 (issue date)", bt="BT-9")
    given = _given(data, currency)
    for field, bt, found in (("currency", "BT-5", currency), ("amount", "BT-115", facts.amount_due),
                             ("issue_date", "BT-2", facts.issue_date), ("due_date", "BT-9", facts.due_date)):
        if field in given and found is not None and given[field] != found:
            show = (lambda v: to_decimal_string(v, currency)) if field == "amount" else str
            raise _mismatch(field, show(given[field]), bt, show(found))
    buyer_ref = facts.buyer_id if facts.buyer_id and REF.fullmatch(facts.buyer_id) else None
    debtor = None
    if "debtor_ref" in given:
        if buyer_ref is not None and given["debtor_ref"] != buyer_ref:
            raise _mismatch("debtor_ref", given["debtor_ref"], "BT-46", buyer_ref)
        ref = given["debtor_ref"]  # must exist, as without Factur-X (_put_invoice says so)
    else:
        debtor = _debtor(creditor, facts, buyer_ref, actor)
        ref = debtor.ref
    due = given.get("due_date") or facts.due_date or facts.issue_date + timedelta(days=creditor.payment_terms_days)
    fields = {**data, "debtor_ref": ref, "issue_date": facts.issue_date.isoformat(), "due_date": due.isoformat(),
              "amount": to_decimal_string(facts.amount_due, currency), "currency": currency}
    fields.pop("pdf_base64", None)
    d = check_invoice(fields)  # the usual checks (dates in range, cancelled...) on the merged fields
    d.pdf = pdf
    invoice, created = _put_invoice(creditor, number, d, actor, debtor)
    # The amounts without VAT and of VAT (BT-109, BT-110) the summary PDF shows, when the XML
    # gives them; the XML is the invoice, so one that gives none clears the earlier ones.
    invoice.amount_excl_tax, invoice.tax_amount = facts.amount_excl_tax, facts.tax_amount
    return invoice, created


def _given(data: dict, currency: str) -> dict:
    """The fields the JSON gives, checked and parsed (an amount in the XML's currency)."""
    given = {}
    if data.get("currency") is not None:
        given["currency"] = currency_of(data["currency"])
    if data.get("amount") is not None:
        given["amount"] = amount_of(data["amount"], given.get("currency", currency))
    for field in ("issue_date", "due_date"):
        if data.get(field) is not None:
            given[field] = check_date(data[field], field)
    if data.get("debtor_ref") is not None:
        given["debtor_ref"] = check_ref(data["debtor_ref"], "debtor_ref")
    return given


def _same_company(ours: str, theirs: str) -> bool:
    """A SIREN and a SIRET of the same company agree (a SIRET is the SIREN and 5 digits)."""
    ours, theirs = "".join(ours.split()).upper(), theirs.upper()
    if ours.isdigit() and theirs.isdigit() and {len(ours), len(theirs)} <= {9, 14}:
        return ours[:9] == theirs[:9]
    return ours == theirs


def _check_seller(creditor: Creditor, facts: FacturX) -> None:
    """An invoice someone else issued (a supplier's, uploaded by mistake) is not ours to chase."""
    for ours, theirs, bt in ((creditor.registration_number, facts.seller_legal_id, "BT-30"),
                             (creditor.vat_number, facts.seller_vat, "BT-31")):
        if ours and theirs and not _same_company(ours, theirs):
            raise FacturXInvalid(f"the invoice was issued by another seller: {bt} is {theirs}, yours is {ours}",
                                 code="facturx_other_seller", bt=bt, found=theirs, ours=ours)


def _debtor(creditor: Creditor, facts: FacturX, buyer_ref: str | None, actor: str) -> Debtor:
    legal = facts.buyer_legal_id if facts.buyer_legal_id and REF.fullmatch(facts.buyer_legal_id) else None
    refs = [r for r in (buyer_ref, legal, legal[:9] if legal and legal.isdigit() and len(legal) == 14 else None) if r]
    if refs:
        found = {d.ref: d for d in db.session.scalars(select(Debtor).where(Debtor.creditor_id == creditor.id,
                                                                           Debtor.ref.in_(refs)))}
        for ref in refs:
            if ref in found:
                return found[ref]
    try:
        name = check_name(facts.buyer_name, "name")
    except Invalid:
        name = None
    if not refs or name is None:
        missing = "BT-44 (buyer name)" if refs else "BT-46 (buyer identifier) or BT-47 (buyer SIREN/SIRET)"
        raise FacturXInvalid(f"no debtor matches the buyer and the XML has no {missing} to create one: "
                             "create the debtor first, or give debtor_ref", "debtor_ref", "debtor_unknown",
                             bt="BT-44" if refs else "BT-46")
    try:
        email = check_email(facts.buyer_email) if facts.buyer_email else None
    except Invalid:
        email = None  # an electronic address that is no e-mail address: the debtor gets none
    debtor, _created = _put_debtor(creditor, refs[0], DebtorInput(name, email, creditor.language, None, None, None),
                                   actor)
    return debtor
