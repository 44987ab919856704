"""App-wide error handlers: the JSON error shape under /api/, pages elsewhere.

A refusal of a service (ServiceError) that reaches here rolls the request's transaction back:
the API answers it in JSON; the back office shows an unknown reference as not found (another
creditor's reads exactly like one that does not exist); anywhere else it is unforeseen. The
portal's own not-found page and the dispute forms' over-size redirects stay with their blueprints.
"""
from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .services import NotFound, ServiceError

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
              413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}


def install(app: Flask) -> None:
    app.register_error_handler(ServiceError, service_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def json_error(status: int, code: str, message: str, field: str | None = None):
    """The API's error body (CONTRACT §4): {"error": {"code", "message", "field"}}."""
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def _api() -> bool:
    return request.path.startswith("/api/")


def service_error(e: ServiceError):
    db.session.rollback()
    if _api():
        return json_error(e.status, e.code, e.message, e.field)
    if isinstance(e, NotFound) and request.blueprint == "creditor":
        return render_template("debtor/error.html", reason="not_found"), 404
    return unexpected_error(e)


def http_error(e: HTTPException):
    # Unmatched URLs and oversize bodies never reach a blueprint: JSON under /api/, and a page in
    # the visitor's language elsewhere (the portal's error page names no debtor).
    if _api():
        code = HTTP_CODES.get(e.code, "error")
        return json_error(e.code or 400, code, e.description or code)
    if e.code == 404:
        return render_template("debtor/error.html", reason="not_found"), 404
    return e


def unexpected_error(e: Exception):
    """Anything unforeseen: logged, rolled back, and under /api/ still the JSON error shape."""
    if isinstance(e, HTTPException):
        return http_error(e)
    db.session.rollback()
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    if _api():
        return json_error(500, "internal_error", "an unexpected error occurred; it has been logged")
    return InternalServerError()
