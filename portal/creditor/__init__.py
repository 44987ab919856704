"""The creditor's back office (flask-login): one blueprint, one module per screen."""
from flask import Blueprint

bp = Blueprint("creditor", __name__, url_prefix="/app")

from . import (activity, api_keys, approvals, auth, dashboard, debtors, disputes, invoices, outbox, payments,  # noqa: E402,F401
               plans, rates, statements)
