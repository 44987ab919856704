"""The entry points, the top floor: `app` for `flask --app app` and gunicorn, `main` for the
`relance` command, `celery` for `celery -A app:celery worker|beat`.

`app` and `celery` are built on first access (PEP 562 module __getattr__), not at import: the
`relance` command builds its own app, and only a Celery process needs Celery (~0.1 s to import).

Start-up makes some 180,000 objects the cyclic garbage collector tracks, nearly all living as
long as the process (modules, classes, the models' mappers, SQLAlchemy's and Jinja's caches): it
would walk them again and again while they are made (every young collection, two full ones: about
a third of an empty `dunning run`'s CPU on a loaded machine). It waits until the app is built,
then they are frozen out of its way (gc.freeze, as for a process about to fork).
"""
import gc

gc.disable()  # until the app is built (_started); only an entry point imports this module

from flask.cli import FlaskGroup  # noqa: E402

from portal import create_app  # noqa: E402


def _started(app):
    """The app is built: what start-up made stays, out of the collector's way; collecting resumes."""
    gc.freeze()
    gc.enable()
    return app


def __getattr__(name: str):
    if name == "app":
        value = _started(create_app())
    elif name == "celery":
        # Imported here: Celery loads kombu, yaml and friends, which a web or CLI process never uses.
        from dunning_jobs.tasks import bind

        value = bind(__getattr__("app"))
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # built once per process
    return value


class _Relance(FlaskGroup):
    def _load_plugin_commands(self) -> None:
        # Flask would import every installed `flask.commands` plugin before resolving any command:
        # only Flask-Limiter's `limiter`, which loads rich (~0.1 s). `relance` offers Flask's
        # commands and the app's own (`db` included), so it skips them.
        self._loaded_plugin_commands = True


def main() -> None:
    # An app of its own, built after FlaskGroup has read --env-file and .env, as `flask` does.
    _Relance(create_app=lambda: _started(create_app())).main()
