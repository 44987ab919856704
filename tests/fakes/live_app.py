"""The app under a real threaded WSGI server on 127.0.0.1 (port 0): what the fake providers
post their webhooks to and what concurrent deliveries hit, as in production."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server


class LiveApp:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"
