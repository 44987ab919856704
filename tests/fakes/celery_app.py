"""The project's Celery app pointed at a test broker in the calling process, and back.

Celery caches its result backend and connection pools on the app object: changing the URLs in
`conf` alone would leave a later test talking to an earlier test's (maybe stopped) Redis."""
from __future__ import annotations

import threading
from contextlib import contextmanager


def _forget_connections(celery) -> None:
    celery.close()  # the broker connection pool
    celery._backend_cache = None
    celery._local = threading.local()  # the per-thread result backend
    if "amqp" in celery.__dict__:
        celery.__dict__["amqp"]._producer_pool = None


@contextmanager
def celery_on(url: str):
    from dunning_jobs.tasks import celery
    saved = {k: celery.conf[k] for k in ("broker_url", "result_backend")}
    _forget_connections(celery)
    celery.conf.update(broker_url=url, result_backend=url)
    try:
        yield celery
    finally:
        _forget_connections(celery)
        celery.conf.update(saved)
