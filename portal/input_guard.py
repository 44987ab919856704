"""One check of every form field and query parameter, before any view runs: a character no
column can store (services/checks.UNSTORABLE: NUL, other control characters, lone surrogates) is
refused with a 422 page naming the field, in the back office and the portal alike, so that no form
can forget it and no text reaches PostgreSQL to fail there. The API checks its JSON bodies with
the same pattern (api/views.body); the webhooks check the providers' events with it too, answering
in their own shape (webhooks/views.py). An uploaded file's name is the dispute forms' to judge
(services/dispute_files makes a safe one or says why not, next to the field)."""
from __future__ import annotations

from flask import Flask, g, render_template, request, session
from flask_login import current_user

from .services import memberships
from .services.checks import UNSTORABLE, shown_field

#: blueprints whose input is checked elsewhere: JSON bodies (api) and signed provider events (webhooks)
CHECKED_ELSEWHERE = ("api", "webhooks")


def unstorable_field(values) -> str | None:
    """The first field (a MultiDict's key) whose name or any value holds an unstorable character."""
    for key, value in values.items(multi=True):
        if UNSTORABLE.search(key) or UNSTORABLE.search(value):
            return shown_field(key)
    return None


def install(app: Flask) -> None:
    @app.before_request
    def refuse_unstorable_input():
        if request.routing_exception is not None or request.blueprint in CHECKED_ELSEWHERE \
                or request.endpoint == "static":
            return None  # no such route (404, 405 as usual), or checked elsewhere
        field = unstorable_field(request.args)
        if field is None and request.method in ("POST", "PUT", "PATCH"):
            field = unstorable_field(request.form)
        if field is None:
            return None
        # Before the blueprints' own hooks: the page in the language they would have chosen.
        if request.blueprint == "creditor" and current_user.is_authenticated:
            g.locale = memberships.active_creditor(current_user, session.get(memberships.SESSION_KEY)).language
        elif request.blueprint == "debtor" and isinstance(session.get("portal"), dict):
            g.locale = session["portal"].get("lang", "fr")
        return render_template("input_refused.html", field=field), 422
