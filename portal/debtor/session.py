"""The portal session: which debtor it is for, the link that opened it and its row on the server
(PortalSession). Every portal view runs under portal_required, which checks the session is still
valid (age, not signed out, link not revoked) and sets g.debtor_id, the only debtor its service
calls may reach."""
from __future__ import annotations

import time
from datetime import date
from functools import wraps

from flask import current_app, g, render_template, request, session, url_for

from ..services import account
from .blueprint import bp

SESSION_KEY = "portal"


def portal_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        state = session.get(SESSION_KEY)
        version = _alive(state)
        if version is None:
            session.pop(SESSION_KEY, None)
            return render_template("debtor/error.html", reason="session"), 401
        g.debtor_id = state["debtor"]
        g.account_version = version  # (newest event id, the debtor's today): the page cache's key
        g.locale = state.get("lang", "fr")
        return view(*args, **kwargs)
    return wrapper


@bp.before_app_request
def _portal_language():
    """A portal page that is no view of ours (a 404 under /portal/) speaks the session's language
    too, as its views do (portal_required sets the same)."""
    if request.path.startswith("/portal/"):
        state = session.get(SESSION_KEY)
        if isinstance(state, dict) and state.get("lang") in ("fr", "en"):
            g.locale = state["lang"]


def _alive(state) -> tuple[int, date] | None:
    """The account's version (services/account.live_version) if the session stands, else None."""
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    if not isinstance(state, dict) or time.time() - state.get("t", 0) > lifetime:
        return None
    return account.live_version(state.get("s"), state.get("debtor"))


def home_if_signed_in() -> str | None:
    """The portal's home if this browser holds a live portal session (an error page links back
    to it), else None: outside a session there is nowhere to link to."""
    return url_for("debtor.home") if _alive(session.get(SESSION_KEY)) is not None else None


@bp.app_context_processor
def _portal_home():
    # Every template may ask, the app's own 404 page included (it renders outside this blueprint);
    # a function, so the session is only looked up by the page that asks.
    return {"portal_home": home_if_signed_in}
