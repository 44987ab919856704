"""Rendered account pages, kept per portal session and account version.

The key holds everything the page shows: the debtor, the id of the newest event touching
the account or its creditor (every state change writes one: DESIGN invariant), the debtor's
local date (days overdue), the language, the preselection and the session's CSRF secret (the
page embeds a token of it). A reload or an htmx poll of an unchanged account is then two
small queries instead of rendering every open item again.
"""
from __future__ import annotations

import threading
from collections import OrderedDict


class PageCache:
    def __init__(self, size: int = 128):
        self.size = size
        self._pages: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: tuple, page) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
