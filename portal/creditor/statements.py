"""Back-office routes for statements (being built in this session)."""
from __future__ import annotations

from . import bp  # noqa: F401
