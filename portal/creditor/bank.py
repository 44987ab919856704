"""The reconciliation screen: upload a bank statement, then confirm the suggestions, match the
unmatched to invoices by number, or set lines aside. Every form works without JavaScript."""
from __future__ import annotations

import re

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required

from ..services import ServiceError, reconciliation
from .blueprint import bp

#: the matching's reasons as the creditor reads them
REASONS = {
    "invoice_reference": lazy_gettext("the invoice's payment reference is quoted"),
    "debtor_reference": lazy_gettext("the debtor's payment reference is quoted"),
    "invoice_numbers": lazy_gettext("invoice numbers are quoted"),
    "exact_amount": lazy_gettext("an open invoice of exactly this amount"),
    "invoice_set": lazy_gettext("open invoices adding up to this amount"),
    "payer_name": lazy_gettext("the payer's name is close to the debtor's"),
    "debtor_balance": lazy_gettext("the debtor's balance is exactly this amount"),
    "payout": lazy_gettext("payout of a payment provider (already recorded)"),
    "debit": lazy_gettext("debit"),
    "already_recorded": lazy_gettext("already recorded by hand or through the API"),
    "confirmed": lazy_gettext("suggestion confirmed"),
    "manual": lazy_gettext("decided by hand"),
    "none": lazy_gettext("nothing points to a debtor"),
}
#: a refusal of the match form, by the service's error code
REFUSALS = {
    "several_debtors": lazy_gettext("Choose invoices of one debtor only."),
    "not_open": lazy_gettext("One of these invoices has nothing left to pay."),
    "currency": lazy_gettext("These invoices are in another currency than the transfer."),
    "already_matched": lazy_gettext("This transfer is already matched."),
    "debit": lazy_gettext("A debit is not matched to invoices."),
    "payout": lazy_gettext("A payout of a payment provider is not matched: its payments are already recorded."),
    "not_found": lazy_gettext("No such invoice."),
}


def _page(status=200):
    return render_template("creditor/bank.html", lists=reconciliation.screen(g.creditor.id), reasons=REASONS), status


@bp.get("/bank")
@login_required
def bank_page():
    return _page()


@bp.post("/bank/statements")
@login_required
def bank_upload():
    upload = request.files.get("statement")
    if upload is None or not upload.filename:
        flash(_("Choose a statement file to import."), "error")
        return _page(422)
    try:
        result = reconciliation.import_statement(g.creditor, upload.stream, upload.filename, actor="creditor",
                                                     user=current_user.email)
    except ServiceError as e:
        flash(_("This file cannot be read as a bank statement (%(where)s). Nothing was imported.",
                where=e.field or e.message), "error")
        return _page(422)
    flash(_("%(format)s statement imported: %(new)d new transfers of %(total)d (%(matched)d matched, "
            "%(suggested)d suggested, %(unmatched)d to reconcile).", format=result.format, new=result.new,
            total=result.transactions, matched=result.matched, suggested=result.suggested,
            unmatched=result.unmatched))
    return redirect(url_for("creditor.bank_page"), code=303)


@bp.post("/bank/transactions/<int:transaction_id>/match")
@login_required
def bank_match(transaction_id):
    numbers = [n for n in re.split(r"[\s,;]+", request.form.get("invoices", "")) if n]
    try:
        reconciliation.confirm_match(g.creditor, transaction_id, numbers, actor="creditor", user=current_user.email)
    except ServiceError as e:
        if e.field == "id" and e.status == 404:
            raise
        flash(REFUSALS.get(e.code, _("These invoices cannot be matched: check their numbers.")), "error")
    else:
        flash(_("Transfer matched: the payment is recorded."))
    return redirect(url_for("creditor.bank_page"), code=303)


@bp.post("/bank/transactions/<int:transaction_id>/ignore")
@login_required
def bank_ignore(transaction_id):
    try:
        reconciliation.ignore(g.creditor, transaction_id, actor="creditor", user=current_user.email)
    except ServiceError as e:
        if e.status == 404:
            raise
        flash(REFUSALS.get(e.code, _("This transfer cannot be ignored.")), "error")
    else:
        flash(_("Transfer ignored."))
    return redirect(url_for("creditor.bank_page"), code=303)
