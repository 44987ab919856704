"""The creditor's back office (flask-login): one blueprint, one module per screen."""
from .blueprint import bp  # noqa: F401  (registered by the app factory)

# Each screen adds its routes to bp when imported.
from . import (activity, api_keys, approvals, auth, bank, calls, dashboard, debtors, debtor_work, disputes,  # noqa: F401
               invoices, dunning_day, facturx, outbox, payments, plans, rates, reports, sms, statements, today)
