"""The store's connection to its database, SQLite or PostgreSQL: one SQLAlchemy Connection, and one way to send SQL.

The store's SQL is portable text with `?` placeholders; `Db.execute` converts them, at this one place, to the
driver's own style (`?` for sqlite3, `%s` for psycopg, with a literal `%` doubled) and sends the statement on the
driver's own cursor of the SQLAlchemy connection (no `:name` parsing, so a colon inside a literal such as 'os:root'
is never taken for a parameter; no result machinery per statement: bench/store.py measured SQLAlchemy's own
execution at ~3/4 of a read's CPU, docs/benchmarks.md). Transactions stay SQLAlchemy's (`begin`, `commit`,
`rollback` on the Connection), so Alembic and the inspector share the connection's state. A statement outside a
transaction is committed at once, in the driver's autocommit (no BEGIN/COMMIT round trips: the store reads what
other workstations have committed, never an old snapshot); `snapshot()` reads several statements from one
committed state (the plan); `begin()` takes the write lock first (BEGIN IMMEDIATE on SQLite).

Errors are SQLAlchemy's (`IntegrityError`, `OperationalError`, both `DatabaseError`), the driver's own in `.orig`."""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event, inspect
from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

__all__ = ["Db", "DatabaseError", "IntegrityError", "OperationalError", "Record", "Rows"]


class Record(tuple):
    """One row: a tuple (by position, by unpacking) that is also read by column name (`row["id"]`, `keys()`,
    `dict(row)`), as sqlite3.Row is."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Record:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


class Rows:
    """The rows of one statement, fetched at once: iterate, `fetchone()`, `fetchall()`; `rowcount` for a write."""

    def __init__(self, rows: list[Record], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Record | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Record]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._rows)


def _convert(sql: str, style: str) -> str:
    """`?` placeholders (outside quoted literals) to the driver's style; for `%s` a literal `%` is doubled."""
    if style == "qmark":
        return sql
    out, quote = [], None
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        else:
            out.append("%%" if ch == "%" else ch)
    return "".join(out)


class Db:
    """One connection of the store (used from the thread that opened it)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        """'sqlite' or 'postgresql'."""
        self._style = "qmark" if self.dialect == "sqlite" else "format"
        self._explicit = False
        self.trail_findings: list[str] = []
        """What the open found of the trail's triggers not in place, in sentences (connection.settle_trail)."""
        self._reading = False
        self._dbapi_error = conn.dialect.loaded_dbapi.Error

    @property
    def raw(self) -> Any:
        """The driver's own connection (sqlite3 or psycopg), for what only the driver offers (SQLite functions)."""
        return self.conn.connection.driver_connection

    @property
    def in_transaction(self) -> bool:
        return self._explicit

    def _failed(self) -> None:
        """After an error outside an explicit transaction: end the implicit one (PostgreSQL refuses every later
        statement of a failed transaction until it is rolled back)."""
        if not self._explicit and not self._reading and self.conn.in_transaction():
            self.conn.rollback()

    def _run(self, sql: str, params: Any, many: bool) -> tuple[list[tuple] | None, list[str], int]:
        """Send one statement on the driver's cursor: (rows or None, column names, rowcount). Outside a transaction
        it is committed at once: SQLite's driver is in autocommit mode already (the engine's begin event starts
        SQLite's own transactions); psycopg is put in autocommit for the one statement (no BEGIN, no COMMIT)."""
        sql = _convert(sql, self._style)
        _refuse_undecodable(params, many)
        alone = not self._explicit and not self._reading
        raw = self.raw
        autocommit = alone and self.dialect == "postgresql" and not self.conn.in_transaction() \
            and raw.info.transaction_status == 0  # psycopg's TransactionStatus.IDLE
        try:
            if autocommit:
                raw.autocommit = True
            cur = raw.cursor()
            try:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                names = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else None
                count = cur.rowcount
            finally:
                cur.close()
                if autocommit:
                    raw.autocommit = False
        except self._dbapi_error as exc:
            self._failed()
            raise DBAPIError.instance(sql, params, exc, self._dbapi_error, dialect=self.conn.dialect) from exc
        except Exception:
            self._failed()
            raise
        if alone and self.conn.in_transaction():  # a transaction SQLAlchemy began (the inspector, Alembic)
            self.conn.commit()
        elif alone and self.dialect == "postgresql" and not autocommit and raw.info.transaction_status != 0:
            raw.commit()
        return rows, names, count

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Rows:
        rows, names, count = self._run(sql, tuple(params), many=False)
        if rows is None:
            return Rows([], count)
        index = {k: i for i, k in enumerate(names)}
        return Rows([Record(r, index) for r in rows], count)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        seq = [tuple(p) for p in seq]
        if seq:
            self._run(sql, seq, many=True)

    @contextmanager
    def snapshot(self) -> Iterator[Db]:
        """Read several statements from ONE committed state of the store (a read-only transaction: SQLite's
        deferred BEGIN, PostgreSQL's REPEATABLE READ READ ONLY), ended at the exit; no write lock is taken and no
        writer waits for it. Inside a transaction already, its own state is read. A write transaction cannot start
        inside (RuntimeError): a plan is read, then saved."""
        if self._explicit or self._reading:
            yield self
            return
        if self.conn.in_transaction():
            self.conn.commit()
        raw = self.raw
        if self.dialect == "postgresql":
            from psycopg import IsolationLevel

            raw.isolation_level, raw.read_only = IsolationLevel.REPEATABLE_READ, True  # one BEGIN says both
        try:
            self.conn.begin()
            self._reading = True
            try:
                yield self
            finally:
                self._reading = False
                if self.conn.in_transaction():
                    self.conn.rollback()  # it wrote nothing: ending it is all
        finally:
            if self.dialect == "postgresql" and raw.info.transaction_status == 0:
                raw.isolation_level, raw.read_only = None, None

    def begin(self) -> None:
        """Start a transaction holding the write lock (SQLite: BEGIN IMMEDIATE; it waits up to the busy timeout)."""
        if self._reading:
            raise RuntimeError("a write transaction cannot start inside a read snapshot (Db.snapshot)")
        if self.conn.in_transaction():
            self.conn.commit()
        self.conn.info["write_lock"] = True
        try:
            self.conn.begin()
        finally:
            self.conn.info.pop("write_lock", None)
        self._explicit = True

    def commit(self) -> None:
        self._explicit = False
        self.conn.commit()

    def rollback(self) -> None:
        self._explicit = False
        self.conn.rollback()

    def tables(self) -> list[str]:
        """The store's tables, by name (Alembic's alembic_version included)."""
        names = inspect(self.conn).get_table_names()
        if not self._explicit:
            self.conn.commit()
        return sorted(names)

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    def columns(self, table: str) -> list[str]:
        """A table's columns in their order."""
        cols = [c["name"] for c in inspect(self.conn).get_columns(table)]
        if not self._explicit:
            self.conn.commit()
        return cols

    def primary_key(self, table: str) -> list[str]:
        """A table's primary key columns, in key order."""
        cols = list(inspect(self.conn).get_pk_constraint(table)["constrained_columns"])
        if not self._explicit:
            self.conn.commit()
        return cols

    def column_types(self, table: str) -> dict[str, str]:
        """{column: its type as the database names it, lower case} ("integer", "text", "double precision"…)."""
        types = {c["name"]: str(c["type"]).lower() for c in inspect(self.conn).get_columns(table)}
        if not self._explicit:
            self.conn.commit()
        return types

    def close(self) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()
        self.conn.close()


def is_busy(exc: BaseException) -> bool:
    """True when SQLite gave up waiting for another connection's lock (SQLITE_BUSY / SQLITE_LOCKED), or PostgreSQL
    did (lock_timeout) or broke a deadlock."""
    exc = getattr(exc, "orig", None) or exc
    if getattr(exc, "sqlstate", None) in ("55P03", "40P01"):  # PostgreSQL: lock_timeout passed, deadlock broken
        return True
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def sqlite_connection(raw: sqlite3.Connection) -> Connection:
    """A SQLAlchemy connection over an open sqlite3 connection in autocommit mode (isolation_level=None). Its
    transactions are SQLite's own (BEGIN, a read snapshot); with `conn.info["write_lock"]` set they start with
    BEGIN IMMEDIATE, which takes the write lock before anything is read."""
    engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
    event.listen(engine, "begin", begin_sqlite)

    return engine.connect()


WRITE_LOCK_POLL_S = (0.001, 0.002, 0.003, 0.005)
"""How long a write waits between tries for SQLite's write lock (then the last value, until the busy timeout):
SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms, so a waiter slept on long after
the lock was free (8 rooms: the store's p99 was that sleep). Tries every 0.5-2 ms cost more CPU for no shorter wait
on 2 cores (the store benchmark's figures, "Store speed")."""


def begin_sqlite(conn: Connection) -> None:
    """The "begin" event of an SQLite engine whose driver is left in autocommit mode (SQLAlchemy's documented way
    to have SQLite's own transactions): BEGIN IMMEDIATE while `conn.info["write_lock"]` is set, else BEGIN.

    BEGIN IMMEDIATE is tried again every WRITE_LOCK_POLL_S while another connection writes, up to the connection's
    busy timeout (PRAGMA busy_timeout, set to 0 for the tries and put back): the same wait and the same error at its
    end (SQLITE_BUSY, `is_busy`) as SQLite's busy handler, without its long sleeps."""
    if not conn.info.get("write_lock"):
        conn.exec_driver_sql("BEGIN")
        return
    raw = conn.connection.driver_connection
    timeout_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + timeout_ms / 1000.0
        for attempt in itertools.count():
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(WRITE_LOCK_POLL_S[min(attempt, len(WRITE_LOCK_POLL_S) - 1)])
    finally:
        raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")


def sqlite_db(raw: sqlite3.Connection) -> Db:
    """A Db over an open sqlite3 connection in autocommit mode (tools and tests that hold one already)."""
    return Db(sqlite_connection(raw))


def _refuse_undecodable(params: Any, many: bool) -> None:
    """A text that is not UTF-8 (a command-line argument with bytes of another encoding arrives as lone surrogates,
    '\\udce9') cannot be stored; refused in words before the driver fails on it (UserError)."""
    from workstation.errors import UserError
    from workstation.terminal import quoted

    rows = params if many else (params,)
    for row in rows:
        values = row.values() if isinstance(row, Mapping) else row
        for v in values:
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:  # named as the terminal shows it: each byte that is not UTF-8 as '?'
                    raise UserError(f"The text {quoted(v)} holds bytes that are not UTF-8 (a name or path typed or "
                                    "copied in another encoding; each such byte is shown as '?'); nothing was saved. "
                                    "Type it again in UTF-8 (a file or folder: one whose name is UTF-8).") from None
