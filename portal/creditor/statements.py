"""Back-office routes for statements: a debtor's statement of account as a PDF."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, request, url_for
from flask_login import current_user, login_required

from ..services import ledger, statements
from .blueprint import bp


@bp.get("/debtors/<path:ref>/statement.pdf")
@login_required
def statement_pdf(ref):
    debtor = ledger.get_debtor(g.creditor.id, ref)  # another creditor's ref: 404
    soa = statements.pdf(debtor.id, request.args.get("from"), request.args.get("to"), actor="creditor",
                         user=current_user.email)
    if soa.error:
        flash(soa.error, "error")
        return redirect(url_for("creditor.debtor", ref=debtor.ref), code=303)
    response = current_app.response_class(soa.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{soa.filename}"'
    return response
