"""A throw-away PostgreSQL database per benchmark run, shared by the benchmark scripts."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def create_database(admin_url: str, prefix: str = "relance_bench") -> tuple[str, str]:
    """Create <prefix>_<random>; return its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(admin_url)
    return name, parts._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def migrated_database(admin_url: str, prefix: str, dbs: list[str], make_app, secret: str, keep: bool = False):
    """A fresh database with the migrations applied: yields (name, url, app); dropped at the end
    unless `keep`. Its name stays in `dbs` meanwhile, for a run's last-resort clean-up."""
    from flask_migrate import upgrade

    from portal.extensions import db

    name, url = create_database(admin_url, prefix)
    dbs.append(name)
    app = make_app(url, secret)
    try:
        with app.app_context():
            upgrade()
            db.session.remove()
            db.engine.dispose()
        yield name, url, app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if keep:
            print(f"kept database {name} ({url})", flush=True)
        else:
            drop_database(admin_url, name)
            print(f"dropped database {name}", flush=True)
        dbs.remove(name)
