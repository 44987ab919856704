"""The Factur-X upload: several invoice PDFs at once, each file's outcome listed (created,
updated or refused with its reason). Each file is imported on its own (services/facturx_invoices):
the good ones are in even when another is refused, which is what a multiple upload leads people
to expect; the list says which to correct and upload again."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required

from ..services import facturx_invoices
from ..services.ledger import MAX_PDF_BYTES
from .auth import session_creditor
from .blueprint import TOO_LARGE, bp

#: the business terms a refusal may name, in the creditor's language
BT_LABELS = {"BT-1": lazy_gettext("invoice number (BT-1)"), "BT-2": lazy_gettext("issue date (BT-2)"),
             "BT-3": lazy_gettext("invoice type (BT-3)"), "BT-5": lazy_gettext("currency (BT-5)"),
             "BT-9": lazy_gettext("due date (BT-9)"), "BT-24": lazy_gettext("Factur-X profile (BT-24)"),
             "BT-30": lazy_gettext("seller's SIREN (BT-30)"), "BT-31": lazy_gettext("seller's VAT number (BT-31)"),
             "BT-44": lazy_gettext("buyer's name (BT-44)"), "BT-46": lazy_gettext("buyer's identifier (BT-46)"),
             "BT-115": lazy_gettext("amount due for payment (BT-115)")}


#: the ledger's refusals an upload may meet (services/ledger._put_invoice, debtors.commit_or_conflict)
LEDGER_MESSAGES = {
    "the currency of an invoice with payments cannot change": lazy_gettext(
        "This invoice has payments already: its currency cannot change."),
    "an invoice with payments cannot move to another debtor": lazy_gettext(
        "This invoice has payments already: it cannot move to another customer."),
    "amount is below what was already paid": lazy_gettext(
        "The amount due is below what was already paid on this invoice."),
    "this resource was changed at the same moment by another request; retry": lazy_gettext(
        "This invoice was changed at the same moment by someone else: upload the file again."),
}


def reason(o: facturx_invoices.Outcome) -> str:
    """Why a file was refused, for people; the service's English message when no better is known."""
    p, bt = o.params or {}, BT_LABELS.get(o.bt, o.bt)
    texts = {
        "not_pdf": lambda: _("This file is not a PDF."),
        "file_too_large": lambda: _("This file is too large: %(mb)s MB at most.", mb=MAX_PDF_BYTES // (1024 * 1024)),
        "too_many_files": lambda: _("Too many files at once: %(most)s at most. Upload this one again.", **p),
        "no_facturx": lambda: _("This PDF is not a Factur-X invoice: it carries no invoice data (factur-x.xml)."),
        "credit_note_unsupported": lambda: _("This is a credit note (type %(type_code)s): credit notes cannot be "
                                             "imported yet. Change the invoice's amount instead.", **p),
        "facturx_nothing_due": lambda: _("The amount due for payment is %(amount)s: there is nothing to collect.", **p),
        "facturx_other_seller": lambda: _("This invoice was issued by another company (%(bt)s %(found)s): "
                                          "only your own invoices can be imported.", bt=bt, **p),
        "debtor_unknown": lambda: _("No customer matches the buyer, and the invoice lacks the %(bt)s to create "
                                    "one. Create the customer first.", bt=bt),
        "facturx_invalid": lambda: (_("The invoice data is unusable: %(bt)s is missing or invalid.", bt=bt) if o.bt
                                    else _("The invoice data (factur-x.xml) cannot be read.")),
    }
    if o.code in texts:
        return texts[o.code]()
    return str(LEDGER_MESSAGES.get(o.message, o.message))


def _page(status=200, outcomes=None, error=None):
    return render_template("creditor/facturx.html", outcomes=outcomes, error=error, reason=reason,
                           max_files=facturx_invoices.MAX_FILES, max_mb=MAX_PDF_BYTES // (1024 * 1024)), status


@bp.get("/facturx")
@login_required
def facturx_page():
    return _page()


@bp.post("/facturx")
@login_required
def facturx_upload():
    chosen = [f for f in request.files.getlist("files") if f.filename]
    if not chosen:
        return _page(422, error=_("Choose one or more Factur-X PDF files."))
    # Read one byte over the limit: enough for the service to say the file is too large.
    files = [(f.filename, f.read(MAX_PDF_BYTES + 1)) for f in chosen]
    outcomes = facturx_invoices.import_pdfs(g.creditor, files, actor="creditor")
    refused = any(o.status == facturx_invoices.REFUSED for o in outcomes)
    return _page(422 if refused and all(o.status == facturx_invoices.REFUSED for o in outcomes) else 200, outcomes)


def upload_too_large(e):
    """The files together are over the server's limit (MAX_CONTENT_LENGTH): nothing was read."""
    if current_user.is_authenticated:  # raised before the blueprint's own locale was set
        g.locale = session_creditor().language
    limit = (request.max_content_length or 0) // (1024 * 1024)
    flash(_("The files are too large together: %(mb)s MB at most in one upload. Upload fewer at once.", mb=limit),
          "error")
    return redirect(url_for("creditor.facturx_page"), code=303)


TOO_LARGE["creditor.facturx_upload"] = upload_too_large
