"""The project's own commands (`flask --app app …`, `celery -A app:celery …`) run as real
subprocesses, configured through the environment exactly as an operator would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: variables of the test runner's own environment that must not leak into a child's configuration
CLEARED = ("DATABASE_URL", "SMTP_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "STRIPE_SECRET_KEY",
           "GOCARDLESS_ACCESS_TOKEN", "RATELIMIT_STORAGE_URI", "MAIL_FROM")


def app_env(database_url: str, smtp_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(DATABASE_URL=database_url, SECRET_KEY="test-secret-key", PORTAL_BASE_URL="http://portal.test",
               PYTHONUNBUFFERED="1")
    if smtp_url:
        env["SMTP_URL"] = smtp_url
    env.update(extra)
    return env


def flask(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start `flask --app app ARGS…` from the project root; stdout and stderr captured."""
    return subprocess.Popen([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def json_line(proc: subprocess.Popen, timeout: float = 300) -> dict:
    """Wait for the command and return the JSON object on its last line of output. The timeout
    only guards against a hung process: on a machine shared by several test suites, a run that
    takes seconds when idle took minutes (a 60 s limit made concurrency tests flaky)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, f"no output\nstderr:\n{err}"
    return json.loads(lines[-1])


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Terminate a child we started (SIGTERM, then SIGKILL after `grace` seconds)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


@contextmanager
def celery_worker(env: dict[str, str], log_path: Path):
    """A real `celery -A app:celery worker`, solo (one task at a time, in order), for the
    `with` block; on the way out it is stopped and the end of its log printed (pytest shows it
    when the test failed)."""
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [str(BIN / "celery"), "-A", "app:celery", "worker", "--pool=solo", "--concurrency=1",
         "--loglevel=info", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        stop(proc)
        log.seek(0)
        print(log.read()[-6000:])
        log.close()
