"""Relance: debtor payment and statement portal with automated dunning."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, g, has_request_context, request
from werkzeug.routing import IntegerConverter

from . import config
from .extensions import babel, csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def _locale():
    # The debtor's language in the portal, the creditor's in the back office.
    if getattr(g, "locale", None):
        return g.locale
    if has_request_context():
        return request.accept_languages.best_match(["fr", "en"]) or "fr"
    return "fr"


class RowId(IntegerConverter):
    """`<int:...>` in our routes names a row: above PostgreSQL's integer the URL matches nothing
    (a 404), instead of reaching the database and failing there (a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=str(ROOT / "instance"), instance_relative_config=True)
    app.url_map.converters["int"] = RowId
    app.config.update(config.load(app.instance_path, overrides))
    app.json.sort_keys = False

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_locale)
    limiter.init_app(app)
    login_manager.init_app(app)

    # Imported here, not at the top: every `import portal.<anything>` runs this package first, and
    # the pure floors (domain, models, the jobs) should not load the web layer with it.
    from . import models  # noqa: F401  (register tables with the metadata)
    from .api import bp as api_bp
    from .creditor import bp as creditor_bp
    from .debtor import bp as debtor_bp
    from .webhooks import bp as webhooks_bp
    from .errors import install as install_errors
    from .security import install as install_security
    from .input_guard import install as install_input_guard
    from .cli import register as register_cli
    from .templating import install as install_templating

    app.register_blueprint(debtor_bp)
    app.register_blueprint(creditor_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(webhooks_bp)
    csrf.exempt(api_bp)  # bearer-token API: no cookies, so no CSRF
    csrf.exempt(webhooks_bp)  # signed by the provider instead
    install_errors(app)
    install_security(app)
    install_input_guard(app)
    install_templating(app)
    register_cli(app)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from sqlalchemy import event

        with app.app_context():
            @event.listens_for(db.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=5000")
                cur.close()

    if app.config["TRUSTED_PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
