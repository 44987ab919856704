"""A throw-away PostgreSQL database per benchmark run, shared by the benchmark scripts."""
from __future__ import annotations

import uuid
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
