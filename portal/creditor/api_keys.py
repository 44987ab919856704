"""The creditor's API keys: create one (shown once), list them, revoke one."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from ..services import tenants
from .blueprint import bp
from .forms import ActionForm, ApiKeyForm


@bp.route("/api-keys", methods=["GET", "POST"])
@login_required
def api_keys():
    form = ApiKeyForm()
    new_key = None
    if form.validate_on_submit():
        new_key = tenants.create_api_key(g.creditor.id, form.label.data, actor="creditor")
    return render_template("creditor/api_keys.html", keys=tenants.api_keys(g.creditor.id), form=form,
                           new_key=new_key, action=ActionForm())


@bp.post("/api-keys/<int:key_id>/revoke")
@login_required
def revoke_api_key(key_id):
    if not tenants.revoke_api_key(g.creditor.id, key_id):
        abort(404)
    flash(_("API key revoked."))
    return redirect(url_for("creditor.api_keys"))
