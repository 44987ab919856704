"""Back-office routes for dashboard (being built in this session)."""
from __future__ import annotations

from . import bp  # noqa: F401
