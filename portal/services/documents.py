"""Invoice PDFs: the creditor's uploaded file, or one generated from the invoice (WeasyPrint)."""
from __future__ import annotations

import hashlib

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Creditor, Debtor, Document, Invoice
from . import NotFound, events


def html_pdf(html: str) -> bytes:
    """An HTML page of templates/pdf as PDF (invoices, statements, letters)."""
    from weasyprint import HTML  # imported late: it loads Pango, which only PDF pages need

    return HTML(string=html).write_pdf()


def render_invoice_pdf(invoice: Invoice, debtor: Debtor, creditor: Creditor) -> bytes:
    return html_pdf(render_template("pdf/invoice.html", invoice=invoice, debtor=debtor, creditor=creditor))


def pdf_for(invoice: Invoice, *, actor: str) -> Document:
    """The invoice's document, generated and stored on first request when none was uploaded.
    A charges item (charge_items) has none: the message that claimed it is its record."""
    if invoice.kind == "charges":
        raise NotFound("no document for charges")
    doc = db.session.scalar(select(Document).where(Document.invoice_id == invoice.id))
    if doc is None:
        debtor = db.session.get(Debtor, invoice.debtor_id)
        creditor = db.session.get(Creditor, invoice.creditor_id)
        pdf = render_invoice_pdf(invoice, debtor, creditor)
        doc = Document(creditor_id=invoice.creditor_id, invoice_id=invoice.id, source="generated",
                       filename=f"{invoice.number.replace('/', '-')}.pdf", content=pdf,
                       sha256=hashlib.sha256(pdf).hexdigest())
        db.session.add(doc)
        try:
            db.session.flush()
        except IntegrityError:  # generated at the same moment by another request
            db.session.rollback()
            doc = db.session.scalar(select(Document).where(Document.invoice_id == invoice.id))
    events.record("document.downloaded", creditor_id=invoice.creditor_id, debtor_id=invoice.debtor_id,
                  invoice_id=invoice.id, actor=actor)
    db.session.commit()
    return doc
