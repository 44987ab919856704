"""The debtor's portal, reached only through a signed link."""
from .blueprint import bp  # noqa: F401  (registered by the app factory)

from . import disputes, payments, promises, sms, views  # noqa: F401  (each screen adds its routes to bp)
