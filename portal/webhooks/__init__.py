"""Provider endpoints: signature first, then the webhook ledger applies each event once."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from . import views  # noqa: E402,F401
