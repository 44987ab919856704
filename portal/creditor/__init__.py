"""The creditor's back office (flask-login)."""
from flask import Blueprint

bp = Blueprint("creditor", __name__, url_prefix="/app")

from . import dashboard, disputes, statements, views  # noqa: E402,F401
