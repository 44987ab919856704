"""gunicorn's settings for Relance. gunicorn reads this file by itself when started in the checkout
(as README "Running in production" starts it); started elsewhere, name it: `-c <checkout>/gunicorn.conf.py`.

No log line carries a portal link's token or short code: the access log and the error log write
`/l/~<hash>` instead (portal.security.redact_links), as the app's own log and `flask serve` do.
"""
from gunicorn.glogging import Logger

from portal.security import RedactLinks


class RedactingLogger(Logger):
    """gunicorn's logger, with every /l/<token> of its access and error lines replaced by a hash."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactLinks) for f in log.filters):
                log.addFilter(RedactLinks())


logger_class = RedactingLogger
