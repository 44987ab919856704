"""The debtor's portal, reached only through a signed link."""
from flask import Blueprint

bp = Blueprint("debtor", __name__)

from . import disputes, payments, promises, views  # noqa: E402,F401
