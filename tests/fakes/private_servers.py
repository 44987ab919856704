"""PostgreSQL and Redis servers of a test's own, started in a temporary directory on free ports,
so that a fault test can restart or kill them without touching the shared servers other runs use.

    pg = PrivatePostgres().start()      # initdb + pg_ctl start; pg.url is a SQLAlchemy URL
    pg.restart()                        # pg_ctl restart -m fast: every client connection is cut
    pg.stop(); pg.cleanup()

    redis = PrivateRedis().start()      # redis-server as a child process, nothing saved to disk
    redis.restart()                     # killed and started again on the same port, empty

Running as root (as in CI containers), PostgreSQL's tools refuse to run: they are run as the
`postgres` OS user with `runuser`, and the data directory is given to that user.
`PrivatePostgres.unavailable()` / `PrivateRedis.unavailable()` say why a test must skip.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class PrivatePostgres:
    """A PostgreSQL cluster of its own: `initdb -A trust -U postgres` into a temporary
    directory, served on 127.0.0.1:<free port> with its socket in that directory."""

    def __init__(self, database: str = "relance"):
        self.bin = self.find_bin()
        self.port = free_port()
        self.database = database
        self.base = Path(tempfile.mkdtemp(prefix="relance-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.as_root = os.geteuid() == 0

    @staticmethod
    def find_bin() -> Path | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(found[-1]).parent if found else None

    @classmethod
    def unavailable(cls) -> str | None:
        """Why a private PostgreSQL cannot run here, or None."""
        if cls.find_bin() is None:
            return "a private PostgreSQL needs initdb (/usr/lib/postgresql/*/bin/initdb not found)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root, initdb needs a 'postgres' OS user to run as"
            if shutil.which("runuser") is None:
                return "running as root, initdb needs runuser to run as the 'postgres' user"
        return None

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                               f"{self.server_log()}")
        return done

    def server_log(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    @property
    def options(self) -> str:
        return (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c max_connections=100")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self):
        if not self.data.exists():
            if self.as_root:
                shutil.chown(self.base, "postgres", "postgres")
            self._run("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D", str(self.data))
            self.pg_ctl_start()
            import psycopg
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{self.database}"')
        else:
            self.pg_ctl_start()
        return self

    def pg_ctl_start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m fast`: active transactions are rolled back and every client
        connection is cut; the server is back (accepting connections) when this returns."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options, "-m", mode, "-w",
                  "restart")

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateRedis:
    """`redis-server` as a child process on 127.0.0.1:<free port>, nothing persisted: a restart
    is an outage that loses whatever the broker held, as a crash of an unpersisted Redis does."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def unavailable() -> str | None:
        if shutil.which("redis-server") is None:
            return "a private Redis needs redis-server on PATH"
        return None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()
