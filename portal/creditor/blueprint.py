"""The blueprint object alone, so that the package and its screens import it without a circle."""
from flask import Blueprint, request
from werkzeug.exceptions import RequestEntityTooLarge

bp = Blueprint("creditor", __name__, url_prefix="/app")

#: endpoint -> its answer to a request over MAX_CONTENT_LENGTH, which is refused while the form is
#: read (by the input guard, before the blueprint's own hooks and the view): each upload screen
#: says why on its own page; elsewhere the plain 413 page
TOO_LARGE = {}


@bp.errorhandler(RequestEntityTooLarge)
def too_large(e):
    answer = TOO_LARGE.get(request.endpoint)
    return answer(e) if answer else e
