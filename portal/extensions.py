"""Flask extensions, created unbound so every layer can import them."""
import click
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData

# Named constraints so Alembic can alter them on SQLite (batch mode) and PostgreSQL alike.
metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class LazyMigrate:
    """Flask-Migrate, loaded on first use. It imports Alembic (~0.15 s, every dialect's DDL), which
    only `flask db …` and the migration helpers (flask_migrate.upgrade in tests and benchmarks)
    need, not a web request nor a `dunning run`. init_app leaves a stand-in for both: the `db`
    command group and app.extensions["migrate"], each of which binds the real Migrate when used."""

    def init_app(self, app, db, **kwargs) -> None:
        loaded = []

        def load():
            if not loaded:
                from flask_migrate import Migrate  # the reason for this class, see its docstring

                Migrate().init_app(app, db, **kwargs)  # replaces both stand-ins
                loaded.append(app.extensions["migrate"])
            return loaded[0]

        app.extensions["migrate"] = _LoadOnUse(load)
        app.cli.add_command(_LazyDbGroup(lambda: load() and app.cli.commands["db"], name="db",
                                         help="Perform database migrations."))


class _LoadOnUse:
    def __init__(self, load):
        self._load = load

    def __getattr__(self, name):
        return getattr(self._load(), name)


class _LazyDbGroup(click.Group):
    def __init__(self, real, **kwargs):
        super().__init__(**kwargs)
        self._real = real

    def make_context(self, info_name, args, parent=None, **extra):
        # The real group parses its options (-d, -x) and runs its subcommand: click invokes
        # the context's command, which is then flask_migrate's own `db` group.
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx):
        return self._real().list_commands(ctx)

    def get_command(self, ctx, name):
        return self._real().get_command(ctx, name)


db = SQLAlchemy(metadata=metadata)
migrate = LazyMigrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
