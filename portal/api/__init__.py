"""REST API v1 for creditors (CONTRACT §4): JSON in, JSON out, bearer API keys."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import views  # noqa: E402,F401
