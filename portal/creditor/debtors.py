"""The debtors list (`/app/debtors`: the home is Today) and one debtor's page: its invoices,
events, portal links, mandate and payment attempts; editing its postal address and kind,
switching automatic collection, issuing and revoking portal links."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from .. import gateways
from ..services import Invalid, events, ladder, ledger, links, mandates, payer, receivables, reversals
from ..domain.calendar import today_for
from .blueprint import bp
from .forms import ActionForm
from .messages import message


@bp.get("/debtors")
@login_required
def debtors():
    q = (request.args.get("q") or "").strip()[:100]
    sort = request.args.get("sort") if request.args.get("sort") in payer.SORTS else "balance"
    direction = request.args.get("dir") if request.args.get("dir") in ("asc", "desc") else payer.SORTS[sort]
    rows = payer.debtor_list(g.creditor, today_for(g.creditor), q or None, sort, direction)
    return render_template("creditor/debtors.html", rows=rows, q=q, sort=sort, direction=direction,
                           sorts=payer.SORTS)


@bp.get("/debtors/<path:ref>")
@login_required
def debtor(ref):
    return _debtor_page(ledger.get_debtor(g.creditor.id, ref))


def _debtor_page(d, status=200, errors=None, typed=None):
    """The debtor's page; `errors` and `typed` refill the address form after a refusal."""
    return render_template("creditor/debtor.html", debtor=d, invoices=receivables.debtor_invoices(d.id),
                           today=today_for(g.creditor), events=events.latest(g.creditor.id, debtor_id=d.id),
                           links=links.for_debtor(g.creditor.id, d.id), form=ActionForm(),
                           new_link=request.args.get("new_link"), credit=ledger.debtor_credit(d.id),
                           mandate=mandates.current(d.id), attempts=reversals.recent_attempts(g.creditor.id, d.id, 20),
                           dd_enabled=gateways.direct_debit() is not None, failed=ladder.failed_steps(d.id), kinds=ledger.KINDS,
                           errors=errors or {}, typed=typed,
                           behaviour=payer.behaviour(d, today_for(g.creditor))), status


@bp.post("/debtors/<path:ref>/details")
@login_required
def update_debtor_details(ref):
    """The postal address letters go to, and the kind of debtor (the legal basis follows it): the
    API's checks and its debtor.updated event; name, e-mail and language stay as they are."""
    d = ledger.get_debtor(g.creditor.id, ref)
    typed = {"address": request.form.get("address", ""), "kind": request.form.get("kind", "")}
    try:
        ledger.upsert_debtor(g.creditor, d.ref, {"name": d.name, "language": d.language, **typed}, actor="creditor")
    except Invalid as e:  # refused before anything was written
        return _debtor_page(d, 422, {e.field: message(e)}, typed)
    flash(_("Postal address and kind of debtor saved."))
    return redirect(url_for("creditor.debtor", ref=d.ref))  # the top: the flash and the form in view


@bp.post("/debtors/<path:ref>/auto-collect")
@login_required
def set_auto_collect(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    enabled = request.form.get("enabled") == "1"
    mandates.set_auto_collect(d, enabled, actor="creditor")
    flash(_("Automatic collection on due dates is on.") if enabled else _("Automatic collection is off."))
    return redirect(url_for("creditor.debtor", ref=d.ref))


@bp.post("/debtors/<path:ref>/links")
@login_required
def create_link(ref):
    d = ledger.get_debtor(g.creditor.id, ref)
    issued = links.issue(d, issued_by="creditor")
    flash(_("New portal link (copy it now): %(url)s", url=issued.url), "link")
    return redirect(url_for("creditor.debtor", ref=d.ref))


@bp.post("/links/<int:link_id>/revoke")
@login_required
def revoke_link(link_id):
    link = links.revoke(g.creditor.id, link_id)
    flash(_("Link revoked."))
    return redirect(url_for("creditor.debtor", ref=link.debtor.ref))
