"""The file a dispute form attaches, read the same way in the portal and the back office."""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from .services import Invalid


def attachment():
    """(the chosen file or None, an Invalid to show or None): a request over the server's size
    limit reads as too large instead of failing the whole form."""
    try:
        return request.files.get("attachment"), None
    except RequestEntityTooLarge:
        return None, Invalid("request too large", "attachment", code="file_too_large")
