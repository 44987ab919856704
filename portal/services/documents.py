"""Invoice PDFs: the creditor's uploaded file, or else a summary of the invoice (invoice_summary,
WeasyPrint), made afresh for each request since it shows what has been paid so far."""
from __future__ import annotations

import hashlib

from sqlalchemy import select

from ..extensions import db
from ..models import Creditor, Debtor, Document, Invoice
from . import NotFound, events, invoice_summary


def html_pdf(html: str) -> bytes:
    """An HTML page of templates/pdf as PDF (invoices, statements, letters)."""
    from weasyprint import HTML  # imported late: it loads Pango, which only PDF pages need

    return HTML(string=html).write_pdf()


def render_invoice_pdf(invoice: Invoice, debtor: Debtor, creditor: Creditor) -> bytes:
    return html_pdf(invoice_summary.summary_html(invoice, debtor, creditor))


def pdf_for(invoice: Invoice, *, actor: str) -> Document:
    """The invoice's uploaded document, or else its summary made now (a Document not stored: an
    earlier release stored generated ones, which are stale and no longer served).
    A charges item (charge_items) has none: the message that claimed it is its record."""
    doc = document_of(invoice)
    events.record("document.downloaded", creditor_id=invoice.creditor_id, debtor_id=invoice.debtor_id,
                  invoice_id=invoice.id, actor=actor)
    db.session.commit()
    return doc


def document_of(invoice: Invoice) -> Document:
    """pdf_for's document, without recording a download: the back office reading it is not the
    debtor opening it (the portal's history and the activity feed say "downloaded" of the debtor)."""
    if invoice.kind == "charges":
        raise NotFound("no document for charges")
    doc = db.session.scalar(select(Document).where(Document.invoice_id == invoice.id))
    if doc is None or doc.source == "generated":
        debtor = db.session.get(Debtor, invoice.debtor_id)
        creditor = db.session.get(Creditor, invoice.creditor_id)
        pdf = render_invoice_pdf(invoice, debtor, creditor)
        doc = Document(creditor_id=invoice.creditor_id, invoice_id=invoice.id, source="generated",
                       filename=invoice_summary.filename(invoice, debtor.language), content=pdf,
                       content_type="application/pdf", sha256=hashlib.sha256(pdf).hexdigest())
    return doc
