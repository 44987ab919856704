"""Compressed responses for the portal's heaviest page and the files every page loads.

The account page is compressed once per cached version (page_cache), not once per request: a
200-invoice page is ~10x smaller gzipped, and gzip at level 6 costs more than serving it from the
cache. The stylesheet and scripts are compressed once per file version (their ETag).

Only pages that reflect nothing of the request are compressed (BREACH: a secret, here the CSRF
token, beside attacker-chosen text in one compressed body); the account page shows what the
session and the database hold, nothing from the query string or a form.
"""
from __future__ import annotations

import gzip
import threading

from flask import Flask, current_app, request

#: what is worth compressing: smaller bodies gain less than the header costs
MIN_SIZE = 1024
_TEXT = ("text/css", "text/javascript", "application/javascript")


def accepts_gzip() -> bool:
    return "gzip" in request.accept_encodings


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)  # mtime 0: the same bytes for the same page


class Page:
    """A rendered page, with its gzipped bytes made on first demand and kept with it."""

    __slots__ = ("html", "_gz")

    def __init__(self, html: str):
        self.html = html
        self._gz: bytes | None = None

    @property
    def gz(self) -> bytes:
        if self._gz is None:
            self._gz = _gzip(self.html.encode("utf-8"))
        return self._gz


def respond(page: Page):
    if accepts_gzip():
        response = current_app.response_class(page.gz, mimetype="text/html")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = current_app.response_class(page.html, mimetype="text/html")
    response.vary.add("Accept-Encoding")
    return response


_static: dict[tuple[str, str], bytes] = {}
_static_lock = threading.Lock()


def install(app: Flask) -> None:
    """Static CSS and JavaScript gzipped when the browser accepts it."""

    @app.after_request
    def compress_static(response):
        if (request.endpoint != "static" or response.status_code != 200 or response.mimetype not in _TEXT
                or "Content-Encoding" in response.headers or not accepts_gzip()):
            return response
        etag, _weak = response.get_etag()
        response.direct_passthrough = False  # send_file's stream, read once here
        key = (request.path, etag or "")
        with _static_lock:
            body = _static.get(key)
        if body is None:
            data = response.get_data()
            if len(data) < MIN_SIZE:
                return response
            body = _gzip(data)
            with _static_lock:
                _static[key] = body
        response.set_data(body)
        response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        if etag:
            response.set_etag(etag, weak=True)  # another encoding of the same file: a weak tag (RFC 9110)
        return response
