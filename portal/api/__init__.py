"""REST API v1 for creditors (CONTRACT §4): JSON in, JSON out, bearer API keys."""
from .blueprint import bp  # noqa: F401  (registered by the app factory)

from . import views  # noqa: F401  (each screen adds its routes to bp)
