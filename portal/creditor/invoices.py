"""One invoice's page: its amounts, the payments applied to it and its events."""
from __future__ import annotations

from flask import g, render_template
from flask_login import login_required

from ..services import events, ledger, receivables
from ..domain.calendar import today_for
from .blueprint import bp


@bp.get("/invoices/<path:number>")
@login_required
def invoice(number):
    inv = ledger.get_invoice(g.creditor.id, number)
    return render_template("creditor/invoice.html", inv=inv, allocations=receivables.allocations(inv.id),
                           events=events.latest(g.creditor.id, limit=200, invoice_id=inv.id),
                           today=today_for(g.creditor))
