"""Formal notices awaiting the creditor's approval: preview the letter, choose how it leaves
(e-mail, letter, registered letter), approve (sent by the outbox), skip, or postpone to a later
day, one at a time or several at once; and the latest approved ones."""
from __future__ import annotations

import io
from datetime import timedelta

from flask import flash, g, redirect, render_template, request, send_file, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from ..domain.calendar import today_for
from ..services import Invalid, NotFound, approvals as approval_list, outbox_view, reminders
from .blueprint import bp
from .forms import PostponeForm


def _approvals_page(status=200, *, errors=None, values=None):
    today = today_for(g.creditor)
    return render_template("creditor/approvals.html", waiting=approval_list.waiting(g.creditor.id, today),
                           approved=outbox_view.latest(g.creditor.id, kind="formal_notice", limit=20),
                           today=today, min_until=today + timedelta(days=1), default_until=today + timedelta(days=7),
                           errors=errors or {}, values=values or {}), status


def _refusal(code: str, name: str) -> str:
    return {"no_address": _("%(name)s has no postal address: add it on the debtor's page before sending a letter.",
                            name=name),
            "no_email": _("%(name)s has no e-mail address: choose a letter.", name=name),
            }.get(code, _("Choose how the formal notice to %(name)s leaves.", name=name))


def _delivery(debtor_id: int) -> str | None:
    """The delivery chosen in the debtor's card (or a lone `delivery`); None: the default."""
    return request.values.get(f"delivery-{debtor_id}") or request.values.get("delivery") or None


@bp.get("/approvals")
@login_required
def approvals():
    return _approvals_page()


@bp.get("/approvals/<int:debtor_id>/preview")
@login_required
def approval_preview(debtor_id):
    """The letter as approving would send it now (PDF, shown in the browser); nothing recorded."""
    try:
        pdf, name = approval_list.preview(g.creditor, debtor_id, today_for(g.creditor), _delivery(debtor_id))
    except (NotFound, Invalid):
        flash(_("Nothing awaits approval for this debtor."), "error")
        return redirect(url_for("creditor.approvals"))
    response = send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=name)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/approvals/<int:debtor_id>/approve")
@login_required
def approve(debtor_id):
    """One notice, with the delivery chosen in its card (CSRF checked app-wide, as every POST)."""
    _flash_decided(approval_list.decide(g.creditor, "approve", {debtor_id: _delivery(debtor_id)},
                                        today_for(g.creditor), user=current_user.email))
    return redirect(url_for("creditor.approvals"))


@bp.post("/approvals/decide")
@login_required
def decide_approvals():
    """Approve or skip the ticked notices in one go (one POST, each debtor decided on its own)."""
    ids = [int(v) for v in request.form.getlist("debtor") if v.isdigit() and len(v) < 12]
    action = request.form.get("action", "")
    if not ids or action not in ("approve", "skip"):
        flash(_("Tick at least one formal notice, then approve or skip."), "error")
        return redirect(url_for("creditor.approvals"))
    _flash_decided(approval_list.decide(g.creditor, action, {i: _delivery(i) for i in ids}, today_for(g.creditor),
                                        user=current_user.email))
    return redirect(url_for("creditor.approvals"))


def _flash_decided(done) -> None:
    if len(done.approved) == 1 and not (done.skipped or done.refused or done.paid or done.missing):
        [(name, delivery)] = done.approved
        flash(_("Formal notice approved: the e-mail to %(name)s is in the outbox.", name=name) if delivery == "email"
              else _("Formal notice approved: the letter to %(name)s is ready to print.", name=name))
    elif done.approved:
        emails = sum(1 for _n, d in done.approved if d == "email")
        letters = len(done.approved) - emails
        parts = [ngettext("%(num)d by e-mail", "%(num)d by e-mail", emails) if emails else "",
                 ngettext("%(num)d letter to print", "%(num)d letters to print", letters) if letters else ""]
        flash(_("Formal notices approved: %(parts)s.", parts=_(" and ").join(p for p in parts if p)))
    if done.skipped:
        flash(ngettext("%(num)d formal notice skipped: it will not be sent.",
                       "%(num)d formal notices skipped: they will not be sent.", len(done.skipped)))
    for name, code in done.refused:
        flash(_refusal(code, name), "error")
    if done.paid:
        flash(_("Nothing was sent to %(names)s: the invoices were paid, cancelled or disputed in the meantime.",
                names=", ".join(done.paid)))
    if done.missing:
        flash(_("Nothing awaits approval for this debtor.") if done.missing == 1 else
              _("%(num)d of the formal notices ticked were already decided.", num=done.missing), "error")


@bp.post("/approvals/<int:debtor_id>/skip")
@login_required
def skip(debtor_id):
    if reminders.skip(g.creditor.id, debtor_id, user=current_user.email):
        flash(_("Formal notice skipped: it will not be sent."))
    else:
        flash(_("Nothing awaits approval for this debtor."), "error")
    return redirect(url_for("creditor.approvals"))


@bp.post("/approvals/<int:debtor_id>/postpone")
@login_required
def postpone(debtor_id):
    form = PostponeForm()
    today = today_for(g.creditor)
    until = form.until.data if form.validate_on_submit() else None
    if until is None or not today < until <= today + timedelta(days=365):
        return _approvals_page(422, errors={debtor_id: _("Choose a day after today, within a year.")},
                               values={debtor_id: request.form.get("until", "")})
    if reminders.postpone(g.creditor.id, debtor_id, until, user=current_user.email):
        flash(_("Formal notice postponed: it will be back in this list on %(date)s.",
                date=format_date(until, "medium")))
    else:
        flash(_("Nothing awaits approval for this debtor."), "error")
    return redirect(url_for("creditor.approvals"))
