"""Opening a store: its URL or path, the role check (clinic or training), SQLite's pragmas and WAL, and the schema
upgrade (workstation.store.upgrade: Alembic, after the legacy migrations for an old store)."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from workstation.errors import UserError
from workstation.keys import IdentityCipher, private_dir, trail_key
from workstation.progname import command
from workstation.store import pg_trail
from workstation.store.db import Db, begin_sqlite, is_busy
from workstation.store.identity import encrypt_plain_rows, has_plain_identity
from workstation.store.paths import clinic_db_path, data_dir, default_db_path, training_db_path
from workstation.store.trail import default_actor, differs_from_trail, install_triggers, register_functions
from workstation.store.trail_repair import REPAIR_TABLE, TriggerFinding, findings_at_open, trigger_findings
from workstation.store.upgrade import LATEST_VERSION, upgrade

log = logging.getLogger(__name__)

ROLES = ("clinic", "training")
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another program's write lock on the store before it gives up with a sentence."""


def busy_error(path: Path, role: str = "clinic") -> UserError:
    """The sentence for a store another program holds: what happened and what to do, never SQLite's text. `role`:
    "clinic" or "training", as every sentence here names the store."""
    return UserError(f"The {role} store {path} is in use by another program, which has held it for more than "
                     f"{BUSY_TIMEOUT_MS / 1000:g} s; nothing was changed. Try again in a moment; if this repeats, "
                     f"close the other program that has the store open.")


class StoreWriteFailed(UserError):
    """The store could not take a write for a reason of its disk or its server, not of what was written: full,
    read-only, an I/O error, the server gone. Nothing of that transaction was saved. During a session this stops
    the session (workstation/session/visit.py); its journal is then completed from the recording at the next start."""

    exit_code = 3
    why = "its disk or server refused the write"  # the cause alone, for a sentence that gives its own advice


_FULL, _READ_ONLY, _DISK_ERROR = "its disk is full", "it is read-only", "its disk reported an error"
_GIVE = "--store (or paths.store / store.url in the settings file)"

# (markers in the driver's text, lower case) -> what it means, for a sentence; SQLite's and PostgreSQL's wordings
_WRITE_FAILURES = (
    (("disk is full", "no space left", "disk full", "could not extend file"), _FULL),
    (("readonly database", "read-only", "read only"), _READ_ONLY),
    (("disk i/o error", "i/o error", "input/output error"), _DISK_ERROR),
    (("server closed the connection", "connection refused", "terminating connection", "could not receive data",
      "connection is closed", "ssl syscall", "consuming input failed"), "its server cannot be reached"),
)


def write_failure(path: object, exc: BaseException, role: str = "clinic") -> UserError | None:
    """The sentence for a write the store could not take (`busy_error` when another program holds it,
    `StoreWriteFailed` for the disk or the server), or None when the error is of another kind. Never the driver's
    own text (that goes to the log)."""
    if is_busy(exc):
        return busy_error(Path(str(path)), role)
    text = str(getattr(exc, "orig", None) or exc).lower()
    why = next((words for markers, words in _WRITE_FAILURES if any(m in text for m in markers)), None)
    if why is None:
        return None
    log.warning("store %s: a write failed: %s", path, text)
    failed = StoreWriteFailed(f"The {role} store {path} could not be written: {why}. Nothing of this change was "
                              "saved. Free some space or check the store's disk or server, then try again.")
    failed.why = why
    return failed


_NO_RIGHTS = ("this account may not use it or its folder (permission denied)",
              "Check the owner and rights of the file and its folder, or give another store with " + _GIVE)
_WRONG_PATH = "Check the path, or give another store with " + _GIVE
# errno of the system's refusal to open or create the store's file (or make its folder) -> (what it means, what to do)
_OPEN_FAILURES = {
    errno.EROFS: (f"{_READ_ONLY} (its disk is mounted read-only)", "Give a store on a disk that can be written "
                  f"with {_GIVE}, or have this disk mounted read-write. Commands that only read (verify, trail "
                  "verify, lists) can still use a store there"),
    errno.EACCES: _NO_RIGHTS,
    errno.EPERM: _NO_RIGHTS,
    errno.EISDIR: ("it is a folder, not a file", "Give the store's file, e.g. {path}/clinic.sqlite3, with " + _GIVE),
    errno.ENOTDIR: ("a part of its path is a file, not a folder", _WRONG_PATH),
    errno.ENOENT: ("its folder does not exist", _WRONG_PATH),
    errno.ENAMETOOLONG: ("its path is too long", "Give a shorter one with " + _GIVE),
    errno.ELOOP: ("its path has a loop of symbolic links", _WRONG_PATH),
    errno.ENOSPC: (_FULL, "Free some space, then try again"),
    errno.EDQUOT: (f"{_FULL} (this account's quota)", "Free some space, then try again"),
    errno.EIO: (_DISK_ERROR, "Check the disk, then try again"),
}


def open_failure(path: object, exc: OSError, role: str = "clinic") -> UserError:
    """The sentence for the store's file (or its folder) that the system refused to open or create: read-only disk,
    a folder, no rights, a missing folder, a full disk... What it means and what to do, never the system's own text
    (that goes to the log)."""
    why, todo = _OPEN_FAILURES.get(exc.errno or 0, ("the system refused it", "Check the path, its folder and its disk"))
    log.warning("store %s: opening its file failed: %s", path, exc)
    return UserError(f"The {role} store {path} cannot be opened: {why}. {todo.format(path=path)}.")


def store_url(target: Path | str) -> URL:
    """The store's URL from a path (an SQLite file) or a URL string (`sqlite:///…`, `postgresql+psycopg://…`)."""
    if isinstance(target, str) and "://" in target:
        try:
            url = make_url(target)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
            raise UserError("The store URL given is not valid (it is not repeated here: it may hold a password); "
                            "give a file path or a URL such as "
                            "postgresql+psycopg://user@server/cicatrix.") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise UserError(f"The store must be SQLite or PostgreSQL, not {url.get_backend_name()}.")
        if url.get_backend_name() == "sqlite" and not url.database:
            raise UserError("An SQLite store URL names its file: sqlite:////path/to/clinic.sqlite3.")
        return url
    return URL.create("sqlite", database=str(Path(target).expanduser()))


def connect(path: Path, role: str, *, read_only: bool = False) -> Db:
    """Open the SQLite store at `path` for `role`: refused when it is the other role's; created, upgraded and
    given its trail triggers as needed (settle_trail). With `read_only` (a command that only reads) a store that
    does not exist is refused (nothing, not even its folder, is created) and trail triggers found not in place are
    left as found, for `trail verify` to report. Raises UserError (a sentence) for every problem a user can meet."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if read_only and not path.is_file():
        raise no_store_error(str(path), role)
    training = role == "training"
    other = clinic_db_path() if training else training_db_path()
    try:
        same = path.resolve() == other.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of symbolic links (Python 3.11)
        raise open_failure(path, exc if isinstance(exc, OSError) else OSError(errno.ELOOP, str(exc)), role) from exc
    if same:
        raise UserError(f"{path} is the {'clinic' if training else 'training'} database; a {role} store cannot "
                        f"open it. Use {default_db_path(training=training)} instead.")
    refused = None  # why the store is opened by SQLite read-only: the system refused to let it be written
    try:
        _private_file(path)
    except OSError as exc:
        if not (read_only and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)):
            raise open_failure(path, exc, role) from exc
        refused = exc
        log.info("store %s: cannot be written (%s); opened read-only", path, exc)
    url = URL.create("sqlite", database=str(path)) if refused is None else _read_only_url(path)
    engine = create_engine(url, poolclass=NullPool)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", begin_sqlite)
    db = None
    try:
        db = Db(engine.connect())
        found = _role_of(db, path)
        if found is None and read_only:
            raise no_store_error(str(path), role, empty=True)
        if found is not None and found != role:
            raise UserError(f"{path} is marked as a {found} database; a {role} store cannot open it. "
                            f"{'Simulation uses the training database.' if training else 'Open it in simulation.'}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > LATEST_VERSION:
            raise UserError(f"{path} has schema version {version}, newer than this program knows "
                            f"({LATEST_VERSION}); update the workstation software.")
        if refused is None and _switch_to_wal(db.raw) != "wal":  # (read-only: its journal as found)
            raise UserError(f"{path} could not be switched to WAL mode; put it on a local disk.")
        before = findings_at_open(db)
        upgrade(db.conn, role=role if found is None else None, where=str(path))
        if has_plain_identity(db):
            encrypt_plain_rows(db, IdentityCipher.load())
        db.trail_findings = settle_trail(db, before, read_only=read_only)
    except (DBAPIError, sqlite3.DatabaseError) as exc:
        _close(db, engine)
        raise _sqlite_open_failure(path, exc, refused, role) from exc
    except BaseException:
        _close(db, engine)
        raise
    return db


_SIDE_FILES = (sqlite3.SQLITE_READONLY_DIRECTORY, sqlite3.SQLITE_READONLY_CANTINIT, sqlite3.SQLITE_READONLY_CANTLOCK)
"""SQLite's codes for a -wal or -shm file it cannot make or use beside the store (its folder, not its content)."""


def _sqlite_open_failure(path: Path, exc: BaseException, refused: OSError | None, role: str) -> UserError:
    """The sentence for an SQLite error met while opening the store at `path` (`refused`: why it was opened
    read-only, if it was): SQLite unable to open the file or make its -wal/-shm files beside it, busy, its disk full
    or read-only, or else a file that is not a store."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None) or 0
    if code & 0xFF == sqlite3.SQLITE_CANTOPEN or code in _SIDE_FILES:
        log.info("opening the store %s: %s", path, orig)
        if refused is not None and refused.errno == errno.EROFS and _unfinished_wal(path):
            return UserError(f"The {role} store {path} cannot be read here: {_READ_ONLY} (its disk is mounted "
                             "read-only) and it was not closed cleanly: its -wal file holds changes SQLite reads "
                             "only where it can write beside it. Open it once where its disk can be written, then "
                             "try again.")
        if refused is None:  # what the system refuses SQLite: the disk read-only, or rights to the file or folder
            why = errno.EROFS if _on_read_only_disk(path.parent) else errno.EACCES if not (
                os.access(path.parent, os.W_OK | os.X_OK) and os.access(path, os.R_OK | os.W_OK)) else 0
            refused = OSError(why, str(orig))
        return open_failure(path, refused, role)
    words = write_failure(path, exc, role)
    if refused is not None and words is not None and getattr(words, "why", "") == _READ_ONLY:
        return UserError(f"The {role} store {path} cannot be opened here: {_READ_ONLY} (no rights to write it, or "
                         "its disk is mounted read-only), and it needs a change before it can be read (an older "
                         "schema to upgrade, or its audit trail's triggers to put back). Open it once with a "
                         "command that writes, where it can be written, then try again.")
    if words is not None:  # busy, or its disk full or read-only: not damaged
        return words
    log.info("opening the store %s: %s", path, orig)
    return UserError(f"{path} is not a Cicatrix database or is damaged (details in the log); check the path.")


def _unfinished_wal(path: Path) -> bool:
    """Whether the store's -wal file holds changes not yet copied into the store's file."""
    wal = Path(f"{path}-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False


def _on_read_only_disk(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_only_url(path: Path) -> URL:
    """The store opened by SQLite without writing anything (`mode=ro`). On a read-only disk, where SQLite cannot
    make the WAL's index file (-shm) a reader needs, `immutable=1` (nothing can change the file there), unless its
    -wal file holds changes not yet in the file (an immutable reader would not see them): then `mode=ro`, which reads
    them when the -shm file is there too."""
    frozen = _on_read_only_disk(path) and not _unfinished_wal(path)
    return URL.create("sqlite", database="file:" + quote(str(path.resolve())),
                      query={"immutable" if frozen else "mode": "1" if frozen else "ro", "uri": "true"})


def connect_server(url: URL, role: str, *, read_only: bool = False) -> Db:
    """Open the PostgreSQL store at `url` for `role`, as `connect` opens an SQLite file (`read_only`: an empty
    database is refused, not made a store; trail triggers are left as found). Connection refused, a wrong password
    or account, and a missing database become sentences (never the driver's text)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    where = display(url)
    engine = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool,
                           connect_args={"connect_timeout": 10})
    key = trail_key()
    event.listen(engine, "connect", lambda raw, _record: pg_trail.configure(raw, key, default_actor()))
    db = None
    try:
        try:
            db = Db(engine.connect())
        except DBAPIError as exc:
            raise UserError(server_problem(exc, where)) from exc
        found = _role_of(db, where)
        if found is None and read_only:
            raise no_store_error(where, role, empty=True)
        if found is not None and found != role:
            raise UserError(f"{where} is marked as a {found} database; a {role} store cannot open it.")
        before = findings_at_open(db)
        upgrade(db.conn, role=role if found is None else None, where=where)
        db.trail_findings = settle_trail(db, before, read_only=read_only)
        if has_plain_identity(db):
            encrypt_plain_rows(db, IdentityCipher.load())
    except DBAPIError as exc:
        _close(db, engine)
        raise UserError(server_problem(exc, where)) from exc
    except BaseException:
        _close(db, engine)
        raise
    return db


def no_store_error(where: str, role: str = "clinic", *, empty: bool = False, source: str = "") -> UserError:
    """The sentence for a command that only reads (or must find a store), given a place where no store is (`source`:
    where that place was given, e.g. "command line --store"): nothing is created there."""
    what = "an empty database" if empty and "://" in where else "an empty file" if empty else \
        "a folder" if "://" not in where and Path(where).is_dir() else "nothing"
    return UserError(f"There is no {role} store at {where} ({what} is there{'; ' + source if source else ''}); "
                     "nothing was created. Give the right one with --store (or paths.store / store.url in the "
                     "settings file).")


def settle_trail(db: Db, before: list[TriggerFinding], *, read_only: bool) -> list[str]:
    """After the schema upgrade of an open: the trail's triggers made to match the schema, and `before` (what the
    open found not in place before its upgrade: trail_repair) put back with a note in the trail each; or, for a
    command that only reads, left as found when nothing else needs making, for `trail verify` to report. Returns a
    sentence per finding, for the opener to show (and they are logged)."""
    if before and read_only and {f.name for f in trigger_findings(db)} <= {f.name for f in before}:
        sentences = [f"{f.problem()}. This command only reads, so it left the trigger as it is: `"
                     f"{command('trail verify')}` reports it, and `{command('trail repair')}` (with the store "
                     "owner's rights) puts it back and notes that in the audit trail." for f in before]
    else:
        install_triggers(db, before)
        sentences = [f"{f.problem()}. It was put back now, and the audit trail notes when and by whom (`"
                     f"{command('trail show --table ' + REPAIR_TABLE)}`)." for f in before]
    for s in sentences:
        log.warning("audit trail: %s", s)
    return sentences


def display(url: URL) -> str:
    """A store URL as shown to people: never its password."""
    return url.render_as_string(hide_password=True)


def server_problem(exc: BaseException, where: str) -> str:
    """The sentence for a PostgreSQL error met while opening the store: what happened and what to do."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "does not exist" in text and "database" in text:
        return f"The clinic store's database {where} does not exist on the server; ask the clinic's administrator to " \
               "create it, or correct store.url."
    if "password" in text or "authentication" in text or ("role" in text and "does not exist" in text):
        return f"The database server refused the account for {where} (wrong account or password); check store.url " \
               "and the account with the clinic's administrator."
    if "refused" in text or "no such file" in text or "could not connect" in text or "timeout" in text \
            or "could not translate host" in text or "name or service" in text:
        return f"The clinic's database server for {where} cannot be reached (not running, or the network is " \
               "down); nothing was changed. Check the server and try again."
    if "permission denied" in text:
        return f"The account for {where} may not do this on the clinic's database; tell the clinic's administrator."
    return f"The clinic's database server for {where} answered with an error; nothing was changed. Tell the " \
           "clinic's administrator."


def _close(db: Db | None, engine) -> None:  # noqa: ANN001 - an Engine
    if db is not None:
        db.close()
    engine.dispose()


def _sqlite_pragmas(raw: sqlite3.Connection, _record: object) -> None:
    """Every SQLite connection of the store: SQLite's own transactions (the driver in autocommit mode, BEGIN from
    the engine's begin event), foreign keys, the busy timeout, secure delete, and the trail's functions."""
    raw.isolation_level = None
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    raw.execute("PRAGMA secure_delete = ON")  # a deleted or replaced value does not linger in free pages
    register_functions(raw, default_actor, str, trail_key())


def _private_file(path: Path) -> None:
    """The store holds clinical data: its folder is created 0700 and the file 0600 (SQLite gives its -wal and -shm
    files the database's mode). A store found readable by others is tightened to 0600; the cicatrix data folder
    itself is always 0700. A folder the store did not create (e.g. /tmp) is left as it is.
    Raises OSError when the system refuses (connect words it: open_failure)."""
    if not path.parent.exists() or path.parent.resolve() == data_dir().resolve():
        private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL journaling and return the mode now in force. Leaving rollback journaling needs an exclusive lock, and
    SQLite answers BUSY at once (without its busy handler) while another process has the new file open: retry for up
    to the busy timeout, as a write would wait."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _role_of(conn: Db, path: Path | str) -> str | None:
    # The schema is made in one transaction with the marker: a store has neither, or both.
    tables = conn.tables()
    if not tables:
        return None
    if "meta" not in tables:
        raise UserError(f"{path} is a database of another program; choose another.")
    row = conn.execute("SELECT rowid, value FROM meta WHERE key = 'role'" if conn.dialect == "sqlite" else
                       "SELECT NULL, value FROM meta WHERE key = 'role'").fetchone()
    if row is None:
        raise UserError(f"{path} has no role marker (clinic or training); it cannot be used safely.")
    by_key = None if conn.dialect == "sqlite" else {"key": "role"}  # (PostgreSQL: no rowid; found by its key)
    if differs_from_trail(conn, "meta", row[0], {"key": "role", "value": row[1]}, ("key", "value"), by_key) not in (
            "", "it is not in the audit trail"):  # a store from before its trail has no record of the marker yet
        raise UserError(f"{path}: its clinic/training marker was changed around the program (it differs from the "
                        "audit trail), so it cannot be opened. Tell the clinic's administrator.")
    return str(row[1])
