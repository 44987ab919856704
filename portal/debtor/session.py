"""The portal session: which debtor it is for, the link that opened it and its row on the server
(PortalSession). Every portal view runs under portal_required, which checks the session is still
valid (age, not signed out, link not revoked) and sets g.debtor_id, the only debtor its service
calls may reach."""
from __future__ import annotations

import time
from functools import wraps

from flask import current_app, g, render_template, session

from ..services import links

SESSION_KEY = "portal"


def portal_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        state = session.get(SESSION_KEY)
        lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
        if (not isinstance(state, dict) or time.time() - state.get("t", 0) > lifetime
                or not links.session_alive(state.get("s"), state.get("debtor"))):
            session.pop(SESSION_KEY, None)
            return render_template("debtor/error.html", reason="session"), 401
        g.debtor_id = state["debtor"]
        g.locale = state.get("lang", "fr")
        return view(*args, **kwargs)
    return wrapper
