"""One invoice's page: its amounts, the payments applied to it, its late-payment charges and its
events; waiving charges (a confirmation page, then the POST)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import Conflict, charge_items, events, ledger, receivables
from ..domain.calendar import today_for
from .blueprint import bp
from .forms import ActionForm


@bp.get("/invoices/<path:number>")
@login_required
def invoice(number):
    inv = ledger.get_invoice(g.creditor.id, number)
    return render_template("creditor/invoice.html", inv=inv, allocations=receivables.allocations(inv.id),
                           events=events.latest(g.creditor.id, limit=200, invoice_id=inv.id),
                           charges=charge_items.of_invoice(inv.id), today=today_for(g.creditor))


@bp.get("/charges/<path:number>/waive")
@login_required
def waive_charges_confirm(number):
    """The confirmation: the open charges of an invoice (or one charges item), a button each."""
    inv, items = charge_items.waivable(g.creditor.id, number)
    return render_template("creditor/waive_charges.html", inv=inv, items=items, form=ActionForm())


@bp.post("/charges/<path:number>/waive")
@login_required
def waive_charges(number):
    try:
        item = charge_items.waive(g.creditor.id, number, user=current_user.email)
    except Conflict:  # paid or waived meanwhile (another tab, a payment just in)
        flash(_("These charges are no longer open."), "error")
        return redirect(url_for("creditor.waive_charges_confirm", number=number))
    flash(_("The late-payment charges were waived: %(label)s.", label=charge_items.label(item)))
    return redirect(url_for("creditor.invoice", number=charge_items.charged_number(item)))
