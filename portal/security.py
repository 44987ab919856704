"""Response headers every page carries (CSP without inline script, framing, sniffing), and the one
check of a redirect target that came from the request."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from urllib.parse import urlsplit

from flask import Flask, request

from . import gateways

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'{providers}; frame-ancestors 'none'")


def install(app: Flask) -> None:
    _LINK_KEY[0] = hashlib.sha256(f"relance.log-link.v1:{app.config['SECRET_KEY']}".encode()).digest()
    # The in-app log and the Werkzeug server's access log (`flask serve`) never show a link's
    # token; gunicorn's logs get the same filter from gunicorn.conf.py.
    for logger in (app.logger, logging.getLogger("werkzeug")):
        if not any(isinstance(f, RedactLinks) for f in logger.filters):
            logger.addFilter(RedactLinks())
    policy = []

    @app.after_request
    def headers(response):
        h = response.headers
        if not policy:
            # A form posted to us is redirected to the provider's hosted page: Chromium checks
            # that redirect against form-action, so the providers' origins must be named.
            policy.append(CSP.format(providers="".join(f" {o}" for o in gateways.hosted_origins())))
        h.setdefault("Content-Security-Policy", policy[0])
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")  # portal URLs must never leak
        h.setdefault("X-Frame-Options", "DENY")
        if request.is_secure or app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.path.startswith(("/portal", "/l/", "/app")):
            h["Cache-Control"] = "no-store"
        return response


def safe_redirect_target(target: str | None, default: str) -> str:
    """`target` when it is a path of this site, else `default`. Every redirect to a URL taken from
    the request (`next=`, a form field, a Referer) goes through here. Refused: another host or a
    scheme (`//evil`, `https:`, `javascript:`), a backslash (browsers read it as `/`), and any
    control, format or white-space character: CR/LF would split the Location header (a 500 before),
    a tab or a bidi override hides what the address really is."""
    if (not isinstance(target, str) or not target.startswith("/") or target.startswith("//") or "\\" in target
            or len(target) > 2000 or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in target)):
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


# --- portal links in logs ---------------------------------------------------------------------
#: the key of the links' log hash: derived from SECRET_KEY when an app is built (so every process
#: of one deployment writes the same hash for a link), random until then
_LINK_KEY = [hashlib.sha256(os.urandom(32)).digest()]
#: a signed token or a short code after /l/ (also percent-encoded, as in a `next=` or a Referer);
#: an already hashed one (`/l/~…`) is left alone
_LINK = re.compile(r"(/l/|%2fl%2f)(?!~)([^\s\x00-\x1f\x7f?#&\"'<>\\%]+)", re.IGNORECASE)


def link_hash(token: str) -> str:
    """A short keyed hash of a portal token or short code: the same link gives the same hash in
    every log line, and the hash gives nothing back (a short code would, unkeyed)."""
    return hashlib.blake2b(token.encode("utf-8", "replace"), key=_LINK_KEY[0], digest_size=6).hexdigest()


def redact_links(text: str) -> str:
    """`text` with every `/l/<token>` written `/l/~<hash>`."""
    return _LINK.sub(lambda m: f"{m.group(1)}~{link_hash(m.group(2))}", text)


class RedactLinks(logging.Filter):
    """Rewrites a log record with its portal tokens and short codes replaced by their hash: the
    message, its arguments (a request line, an access-log atom) and a traceback's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record: let logging report it as it would
            return True
        clean = redact_links(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_links(record.exc_text)
        return True
