"""Calls to make ("Appels à passer"): the open call tasks that `call` steps made, the most at
stake first, each with the debtor's numbers, what it owes, the invoices and its last messages,
and a small form to record the call's outcome (which closes the task: the step counts as sent)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import ServiceError, call_tasks
from ..domain.calendar import today_for
from .blueprint import bp


def _error_text(e: ServiceError) -> str:
    if e.code == "no_promisable_invoice":
        return _("None of these invoices can take a promise now (paid, disputed or promised already).")
    if e.code == "task_closed":
        return _("This call was recorded already.")
    return {"outcome": _("Choose how the call ended."),
            "note": _("The note is too long (2000 characters at most) or holds characters that cannot be stored."),
            "promise_date": _("Enter the promised date, within the days a debtor may promise."),
            "promise_amount": _("Enter an amount like 120.50, at most what the invoices still owe."),
            }.get(e.field, e.message)


def _calls_page(status=200, *, errors=None, values=None):
    return render_template("creditor/calls.html", rows=call_tasks.workbench(g.creditor.id),
                           today=today_for(g.creditor), errors=errors or {}, values=values or {}), status


@bp.get("/calls")
@login_required
def calls_page():
    return _calls_page()


@bp.post("/calls/<int:task_id>/outcome")
@login_required
def record_call(task_id):
    data = {k: request.form.get(k, "").strip() for k in ("outcome", "note", "promise_date", "promise_amount")}
    data = {k: v for k, v in data.items() if v}
    try:
        call_tasks.record_outcome(g.creditor, task_id, data, user=current_user)
    except ServiceError as e:
        if e.status == 404:
            raise
        return _calls_page(e.status, errors={task_id: _error_text(e)}, values={task_id: data})
    flash(_("Call recorded."))
    return redirect(url_for("creditor.calls_page"))
