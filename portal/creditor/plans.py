"""Dunning plans: every step's timing, channel and texts, edited in place, with a preview of the
message a sample debtor would get."""
from __future__ import annotations

from flask import current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from .. import gateways
from ..services import Invalid, plans, sms_preview, step_preview
from ..domain.calendar import today_for
from .blueprint import bp
from .messages import message

STEP_FIELDS = ("offset_days", "channel", *step_preview.TEXT_FIELDS)


def _step_data(form) -> dict:
    """The step form as plans.update_step takes it: an unticked box is absent from the form,
    and text areas send CRLF line ends (the e-mail layout splits paragraphs on blank lines)."""
    data = {f: form[f] for f in STEP_FIELDS if f in form}
    for f in step_preview.TEXT_FIELDS:
        if f in data:
            data[f] = data[f].replace("\r\n", "\n")
    if "offset_days" in data:
        data["offset_days"] = data["offset_days"].strip()
    data["requires_approval"] = "requires_approval" in form
    data["adds_charges"] = "adds_charges" in form
    return data


def _plans_page(status=200, *, edits=None, errors=None, previews=None, open_step=None):
    plans.ensure_default_plans(g.creditor.id)
    return render_template("creditor/plans.html", plans=plans.plans_for(g.creditor.id), edits=edits or {},
                           errors=errors or {}, previews=previews or {}, open_step=open_step,
                           sms_enabled=gateways.sms() is not None), status


@bp.get("/plans")
@login_required
def dunning_plans():
    return _plans_page()


@bp.post("/plans/steps/<int:step_id>")
@login_required
def edit_step(step_id):
    step = plans.get_step(g.creditor.id, step_id)
    data = _step_data(request.form)
    try:
        # Checks every field and that every text renders before it sets any: a refusal writes nothing.
        plans.update_step(g.creditor.id, step.id, data)
    except Invalid as e:
        return _plans_page(422, edits={step_id: data}, errors={step_id: {e.field: message(e)}}, open_step=step_id)
    flash(_("Step saved."))
    return redirect(url_for("creditor.dunning_plans", _anchor=f"step-{step_id}"))


@bp.post("/plans/steps/<int:step_id>/preview")
@login_required
def preview_step(step_id):
    """The step's message to a sample debtor, from the texts as typed (nothing is saved):
    the preview fragment for htmx, the plans page with it for a plain form post."""
    step = plans.get_step(g.creditor.id, step_id)
    data = _step_data(request.form)
    errors = {}
    try:
        today = today_for(g.creditor)
        preview = {"samples": step_preview.sample_messages(g.creditor, step, data, today)}
        if data.get("channel", step.channel) == "sms":
            offset = data.get("offset_days", "")
            preview["sms"] = sms_preview.samples(g.creditor, step, today, current_app.config["PORTAL_BASE_URL"],
                                                 int(offset) if offset.lstrip("-").isdigit() else None)
    except Invalid as e:
        preview = {"error": message(e), "field": e.field}
        errors = {step_id: {e.field: preview["error"]}}
    if request.headers.get("HX-Request") == "true":
        response = make_response(render_template("creditor/_step_preview.html", step=step, preview=preview,
                                                 sms_enabled=gateways.sms() is not None))
    else:
        response = make_response(_plans_page(edits={step_id: data}, errors=errors, previews={step_id: preview},
                                             open_step=step_id))
    response.vary.add("HX-Request")
    return response
