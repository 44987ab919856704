"""What the fake payment providers share: a threaded HTTP server on 127.0.0.1 (port 0) with a
small router, and webhook delivery to the app under test, over HTTP or into a test client.

A fake subclasses ProviderServer, registers routes with `route(method, pattern)` and answers
with `Reply`. Webhooks go to `webhook_url` (a real HTTP POST) or `webhook_sink` (a callable
taking (body, headers) and returning a status code, e.g. a Flask test client's post); every
delivery is kept in `deliveries` so tests can read what was sent and what the app answered.
"""
from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import requests


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict  # path parameters from the route pattern

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/html; charset=utf-8"
        return self.body, "application/octet-stream"


def redirect(location: str) -> Reply:
    return Reply(303, b"", {"Location": location})


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    status: int | None  # None: the app could not be reached


class ProviderServer:
    """Base of the fakes. Subclasses call `self.route(...)` in __init__ before start()."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Callable[[Request], Reply]]] = []
        self.lock = threading.RLock()  # one state change at a time, as a real provider's database
        self.webhook_url: str | None = None
        self.webhook_sink: Callable[[bytes, dict], int] | None = None
        self.deliveries: list[Delivery] = []
        self._server: ThreadingHTTPServer | None = None

    def route(self, method: str, pattern: str, handler: Callable[[Request], Reply]) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, handler))

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle on, each answer waits
            # for the client's delayed ACK (about 40 ms), which no real provider does.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet test output
                pass

            def _handle(self):
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = fake._dispatch(self.command, parts.path, urllib.parse.parse_qs(parts.query),
                                       {k.lower(): v for k, v in self.headers.items()}, body)
                data, content_type = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.pop("Content-Type", content_type))
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _dispatch(self, method, path, query, headers, body) -> Reply:
        for m, regex, handler in self._routes:
            match = regex.match(path)
            if m == method and match:
                return handler(Request(method, path, query, headers, body, match.groupdict()))
        return self.not_found(path)

    def not_found(self, path: str) -> Reply:
        return Reply(404, {"error": {"message": f"Unrecognized request URL ({path})"}})

    # --- webhooks ----------------------------------------------------------------------------

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> Delivery:
        """Send one signed webhook to the app and record what it answered."""
        headers = {"Content-Type": "application/json", **headers}
        status = None
        if self.webhook_sink is not None:
            status = self.webhook_sink(body, headers)
        elif self.webhook_url is not None:
            try:
                status = requests.post(self.webhook_url, data=body, headers=headers, timeout=30).status_code
            except requests.ConnectionError:
                status = None
        delivery = Delivery(body, headers, status)
        self.deliveries.append(delivery)
        return delivery
