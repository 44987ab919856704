"""Signing in and out of the back office, and the signed-in user's creditor and language for
every back-office request."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter, login_manager
from ..security import safe_redirect_target
from ..services import creditor_users
from .blueprint import bp
from .forms import LoginForm


@login_manager.user_loader
def load_user(session_id: str):
    # The id in the cookie carries the user's session generation (CreditorUser.get_id): once a
    # sign-out or a new password has moved it on, every copy of an older cookie is signed out.
    return creditor_users.for_session(session_id)


login_manager.login_view = "creditor.login"
# flask-login's own "Please log in…" is English only: ours, in the page's language
login_manager.login_message = lazy_gettext("Please sign in to see this page.")
login_manager.session_protection = "strong"


@bp.before_request
def creditor_locale():
    if current_user.is_authenticated:
        g.creditor = current_user.creditor
        g.locale = g.creditor.language


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = creditor_users.log_in(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            return redirect(safe_redirect_target(request.args.get("next"), url_for("creditor.today")))
        flash(_("Wrong e-mail or password."), "error")
    return render_template("creditor/login.html", form=form), 200 if request.method == "GET" else 401


@bp.post("/logout")
@login_required
def logout():
    creditor_users.log_out(current_user._get_current_object())  # ends this session everywhere, copies of the cookie included
    logout_user()
    return redirect(url_for("creditor.login"))
