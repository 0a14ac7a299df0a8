"""The world the package's tests run in, made of real parts: the `vexil` binary
(VEXIL_BIN), a SQLite file or a fresh PostgreSQL database per test, `vexil serve` on a
loopback port, and a TCP proxy that can cut a connection. Nothing is mocked, and a
missing part fails the test with what to do, never skips it.

crates/vexil-cli/tests/it/python.rs installs the package into the venv that
.ci/services made and runs these tests with VEXIL_BIN set.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_FLAGS = REPO / "examples" / "feature_flags.yaml"
POSTGRES = "postgres://postgres@127.0.0.1:5432"
PASSWORD = "a long enough password\n"
DEADLINE = 20.0


# Read once, before any test clears the VEXIL_* variables.
BINARY = os.environ.get("VEXIL_BIN")


def vexil_bin() -> str:
    binary = BINARY
    assert binary and Path(binary).exists(), (
        "VEXIL_BIN must name the vexil binary: run these tests through "
        "`cargo test -p vexil-cli --test it python` (crates/vexil-cli/tests/it/python.rs)"
    )
    return binary


def wait_until(check, what: str, deadline: float = DEADLINE):
    """Polls `check` until it returns a true value, which it returns."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < end, f"never: {what}"
        time.sleep(0.02)


class Site:
    """A directory with the example flags file, where `vexil` runs against one
    database, as an operator's shell on a host would."""

    def __init__(self, directory: Path, database_url: str):
        self.dir = directory
        self.database_url = database_url
        shutil.copy(EXAMPLE_FLAGS, directory / "feature_flags.yaml")
        self.flags_file = directory / "feature_flags.yaml"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": self.database_url,
            "VEXIL_FLAGS": str(self.flags_file),
        }
        env.update(extra)
        return env

    def run(self, *args: str, stdin: str | None = None) -> str:
        """`vexil args…`; its stdout, or the test fails with what it printed."""
        done = subprocess.run(
            [vexil_bin(), *args],
            cwd=self.dir,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"vexil {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run_failing(self, *args: str) -> str:
        """`vexil args…`, which must exit 1 (a check that fails); its stdout."""
        done = subprocess.run(
            [vexil_bin(), *args], cwd=self.dir, env=self.env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1, f"vexil {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def execute(self, sql: str) -> None:
        """Direct SQL, through the database's own client, as the runbook's Option A."""
        if self.database_url.startswith("sqlite://"):
            command = ["sqlite3", self.database_url[len("sqlite://"):], sql]
        else:
            command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.database_url, "-c", sql]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{command}: {done.stderr}"


@pytest.fixture(params=["sqlite", "postgres"])
def site(request, tmp_path):
    """A migrated database of either kind, with a superadmin `root`."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'vexil.db'}"
        dropper = None
    else:
        assert shutil.which("psql"), "psql is missing: run `bash .ci/services`"
        name = f"vexil_py_{secrets.token_hex(6)}"
        subprocess.run(["psql", "-X", "-q", f"{POSTGRES}/postgres", "-c", f"CREATE DATABASE {name}"], check=True)
        url = f"{POSTGRES}/{name}"

        def dropper():
            subprocess.run(
                ["psql", "-X", "-q", f"{POSTGRES}/postgres", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                check=False,
            )

    site = Site(tmp_path, url)
    site.run("migrate")
    site.run("user", "add", "root", "--role", "superadmin", stdin=PASSWORD)
    yield site
    if dropper:
        dropper()


@pytest.fixture
def sqlite_site(tmp_path):
    site = Site(tmp_path, f"sqlite://{tmp_path / 'vexil.db'}")
    site.run("migrate")
    site.run("user", "add", "root", "--role", "superadmin", stdin=PASSWORD)
    return site


class Server:
    """`vexil serve` for a site, on a loopback port it keeps across restarts."""

    def __init__(self, site: Site):
        self.site = site
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [vexil_bin(), "serve", "--bind", f"127.0.0.1:{self.port}"],
            cwd=self.site.dir,
            env=self.site.env(VEXIL_TOKEN_CACHE_SECONDS="1", FLAG_CONSOLE_FEATURE_FLAGS_DB="1"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        stderr = self.process.stderr

        def pump():
            for line in stderr:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        end = time.monotonic() + DEADLINE
        while True:
            assert time.monotonic() < end, "vexil serve never said it listens"
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "vexil serve exited"
                continue
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client_key(self, env: str = "prod", app: str = "raxx-console-prod") -> str:
        return self.site.run("client-key", "create", "--env", env, "--app", app).strip()


@pytest.fixture
def server(site):
    server = Server(site)
    yield server
    server.kill()


class Proxy:
    """A TCP proxy on a loopback port in front of `target`, which a test can cut
    (every open connection closed, new ones refused) and restore."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_off = True
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.cut_off = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def clean_env(monkeypatch):
    """No vexil or FLAG_* variable of the caller's leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("VEXIL_", "FLAG_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch
