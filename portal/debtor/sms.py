"""The portal's SMS opt-out (CONTRACT §9): the same choice a STOP reply makes, for a debtor who
would rather click (and the only way when the sender is alphanumeric and takes no replies).
Post, redirect, get with a flash: works without JavaScript."""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _

from ..extensions import limiter
from ..services import sms_inbox
from .blueprint import bp
from .session import portal_required


@bp.post("/portal/sms")
@limiter.limit("20 per hour")
@portal_required
def sms_choice():
    choice = request.form.get("sms")
    if choice not in ("stop", "start"):
        return redirect(url_for("debtor.home"), code=303)
    sms_inbox.portal_choice(g.debtor_id, choice == "stop")
    flash(_("You will no longer receive text messages from us.") if choice == "stop" else
          _("You will receive text messages from us again."), "info")
    return redirect(url_for("debtor.home", _anchor="contact-h"), code=303)
