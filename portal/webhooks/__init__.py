"""Provider endpoints: signature first, then the webhook ledger applies each event once."""
from .blueprint import bp  # noqa: F401  (registered by the app factory)

from . import twilio, views  # noqa: F401  (each screen adds its routes to bp)
