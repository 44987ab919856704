"""Signing in and out of the back office, and the signed-in user's creditor and language for
every back-office request."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter, login_manager
from ..security import safe_redirect_target
from ..services import NotFound, creditor_users, memberships
from .blueprint import bp
from .forms import ActionForm, LoginForm


@login_manager.user_loader
def load_user(session_id: str):
    # The id in the cookie carries the user's session generation (CreditorUser.get_id): once a
    # sign-out or a new password has moved it on, every copy of an older cookie is signed out.
    return creditor_users.for_session(session_id)


login_manager.login_view = "creditor.login"
# flask-login's own "Please log in…" is English only: ours, in the page's language
login_manager.login_message = lazy_gettext("Please sign in to see this page.")
login_manager.session_protection = "strong"


def session_creditor():
    """The creditor this session works on: the one it switched to while the user belongs to it,
    else the user's own. Every back-office screen scopes its data to it (g.creditor)."""
    return memberships.active_creditor(current_user, session.get(memberships.SESSION_KEY))


@bp.before_request
def creditor_locale():
    if current_user.is_authenticated:
        g.creditor = session_creditor()
        g.locale = g.creditor.language


@bp.context_processor
def group_creditors():
    """The creditors the header's switcher offers, for a user of several (read on demand)."""
    def creditors():
        if not current_user.is_authenticated:
            return []
        found = memberships.creditors_of(current_user)
        return found if len(found) > 1 else []
    return {"group_creditors": creditors}


@bp.post("/switch")
@login_required
def switch_creditor():
    """Work on another creditor of the user's group; any other id is a 404 and changes nothing."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        creditor = memberships.switch(current_user, request.form.get("creditor_id", ""))
    except NotFound:
        abort(404)
    session[memberships.SESSION_KEY] = creditor.id
    return redirect(url_for("creditor.dashboard_page"), code=303)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = creditor_users.log_in(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            session[memberships.SESSION_KEY] = user.creditor_id  # every sign-in starts on the user's own
            return redirect(safe_redirect_target(request.args.get("next"), url_for("creditor.today")))
        flash(_("Wrong e-mail or password."), "error")
    return render_template("creditor/login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
@login_required
def logout():
    creditor_users.log_out(current_user._get_current_object())  # ends this session everywhere, copies of the cookie included
    logout_user()
    session.pop(memberships.SESSION_KEY, None)
    return redirect(url_for("creditor.login"))
