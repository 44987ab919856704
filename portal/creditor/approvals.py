"""Formal notices awaiting the creditor's approval: approve (sent by the outbox), skip, or
postpone to a later day; and the latest approved ones."""
from __future__ import annotations

from datetime import timedelta

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import NotFound, outbox_view, reminders
from ..domain.calendar import today_for
from .blueprint import bp
from .forms import PostponeForm


def _approvals_page(status=200, *, errors=None, values=None):
    today = today_for(g.creditor)
    return render_template("creditor/approvals.html", waiting=reminders.awaiting(g.creditor.id, today),
                           approved=outbox_view.latest(g.creditor.id, kind="formal_notice", limit=20),
                           today=today, min_until=today + timedelta(days=1), default_until=today + timedelta(days=7),
                           errors=errors or {}, values=values or {}), status


@bp.get("/approvals")
@login_required
def approvals():
    return _approvals_page()


@bp.post("/approvals/<int:debtor_id>/approve")
@login_required
def approve(debtor_id):
    try:
        message = reminders.approve(g.creditor, debtor_id, today_for(g.creditor), user=current_user.email)
    except NotFound:
        flash(_("Nothing awaits approval for this debtor."), "error")
        return redirect(url_for("creditor.approvals"))
    if message is None:
        flash(_("Nothing was sent: the invoices were paid, cancelled or disputed in the meantime."))
    else:
        _msg, debtor = outbox_view.get(g.creditor.id, message.id)
        if message.channel == "letter":
            flash(_("Formal notice approved: the letter to %(name)s is ready to print.", name=debtor.name))
        else:
            flash(_("Formal notice approved: the e-mail to %(name)s is in the outbox.", name=debtor.name))
    return redirect(url_for("creditor.approvals"))


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
