"""The blueprint object alone, so that the package and its screens import it without a circle."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
