"""A throw-away PostgreSQL server for the tests and the store benchmark: initdb into a temporary folder, listen on a
Unix socket in that folder only (no TCP port), trust authentication for the local superuser, removed on stop.

This is not how a clinic runs its server (docs/deployment.md); it exists so that `make test` and `bench/store.py`
exercise a real server with nothing to set up beforehand. Debian's `postgresql` package provides the programs
(`.ci/run` installs it). PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system
account (created by that package) through `runuser`; its folder is handed to that account.

    with ThrowawayPostgres() as server:
        url = server.create_database("rooms")   # postgresql+psycopg://postgres@/rooms?host=/tmp/...
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from workstation.errors import UserError

SUPERUSER = "postgres"
START_TIMEOUT_S = 60  # pg_ctl -w waits for the server to accept connections; a loaded CI machine can be slow
RUN_AS = "postgres"  # the system account Debian's package creates; the server runs as it when we are root


def server_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres. Raises UserError, naming the package, if none is installed."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out:
            candidates.append(Path(out))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise UserError("The PostgreSQL server programs (initdb, pg_ctl) are not installed; on Debian run "
                    "'apt-get install postgresql' (`.ci/run` does this).")


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary folder. `start()` returns the server's base URL; `stop()` stops it
    and removes the folder. Raises UserError if the programs are missing or the server does not start (with its
    log's last lines)."""

    def __init__(self, parent: Path | str | None = None, *, durable: bool = False) -> None:
        """`parent`: where its temporary folder is made (default the system's temporary folder). Under root it must
        be reachable by the `postgres` account (pytest's private tmp_path is not). `durable`: the server flushes
        its WAL at every commit as a clinic's server does (fsync on, synchronous_commit on; bench/store.py times
        that); by default fsync is off, for the tests' speed (a throw-away cluster has nothing to keep)."""
        self._parent = Path(parent) if parent is not None else None
        self._durable = durable
        self.folder: Path | None = None
        self._bin = server_bin_dir()
        self._as_root = os.geteuid() == 0

    @property
    def socket_dir(self) -> Path:
        assert self.folder is not None, "the server is not started"
        return self.folder / "socket"

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """SQLAlchemy URL of `database` on this server over its Unix socket (psycopg 3 driver)."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")

    def start(self) -> str:
        self.folder = Path(tempfile.mkdtemp(prefix="cicatrix-pg-", dir=self._parent))
        data, log = self.folder / "data", self.folder / "server.log"
        self.socket_dir.mkdir()
        if self._as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chmod(self.folder, 0o755)
            for path in (self.folder, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        done = self._run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                         "--no-sync")
        if done.returncode != 0:
            self._remove()
            raise UserError(f"initdb could not create a throw-away PostgreSQL cluster: {done.stderr.strip()[-400:]}")
        options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' " \
                  f"-c fsync={'on' if self._durable else 'off'} -c max_connections=100"
        done = self._run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", str(START_TIMEOUT_S),
                         "start")
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-600:] if log.exists() else done.stderr
            self.stop()
            raise UserError(f"The throw-away PostgreSQL server did not start: {tail.strip()}")
        return self.url()

    def create_database(self, name: str) -> str:
        """Create an empty database `name` (letters, digits, underscore) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and underscores only")
        done = self._run("createdb", "-h", str(self.socket_dir), "-U", SUPERUSER, name)
        if done.returncode != 0:
            raise UserError(f"Could not create database {name}: {done.stderr.strip()}")
        return self.url(name)

    def stop(self) -> None:
        if self.folder is None:
            return
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        self._remove()

    def _remove(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
