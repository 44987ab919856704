"""The creditor's activity: the latest events, newest first."""
from __future__ import annotations

from flask import g, render_template
from flask_login import login_required

from ..services import events
from .blueprint import bp


@bp.get("/activity")
@login_required
def activity():
    return render_template("creditor/activity.html", events=events.latest(g.creditor.id, limit=100))
