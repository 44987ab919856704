"""WSGI entry point for the benchmark: the real app, configured from the environment.

    DATABASE_URL=postgresql://... SECRET_KEY=... gunicorn --chdir <repo> benchmarks.wsgi_app:app
"""
from __future__ import annotations

import os

from portal import create_app

app = create_app({
    "DATABASE_URL": os.environ["DATABASE_URL"],
    "SECRET_KEY": os.environ["SECRET_KEY"],
    "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
    "RATELIMIT_ENABLED": False,
    "RATELIMIT_STORAGE_URI": "memory://",
})
