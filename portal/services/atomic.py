"""A use case is one transaction: when it refuses (a ServiceError) after it began writing or
locking rows, it rolls back before its caller sees the refusal, so the page that shows the
refusal reads the database as it is and no row lock outlives the refusal."""
from __future__ import annotations

from functools import wraps

from ..extensions import db
from . import ServiceError


def atomic(use_case):
    @wraps(use_case)
    def run(*args, **kwargs):
        try:
            return use_case(*args, **kwargs)
        except ServiceError:
            db.session.rollback()
            raise
    return run
