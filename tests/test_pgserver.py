"""The throw-away PostgreSQL server the store tests and bench/store.py use: real initdb, real server, removed after."""

from __future__ import annotations

import psycopg
import pytest

from workstation.store.pgserver import ThrowawayPostgres


def _libpq(url: str) -> str:
    # postgresql+psycopg://postgres@/db?host=/sock -> libpq keywords
    rest = url.split("://", 1)[1]
    user, rest = rest.split("@", 1)
    db, host = rest.lstrip("/").split("?host=")
    return f"user={user} dbname={db} host={host}"


def test_a_database_of_its_own_answers_and_the_server_is_gone_after():
    server = ThrowawayPostgres()
    server.start()
    folder = server.folder
    try:
        url = server.create_database("rooms_1")
        with psycopg.connect(_libpq(url)) as conn:
            conn.execute("CREATE TABLE t (x integer)")
            conn.execute("INSERT INTO t VALUES (42)")
            assert conn.execute("SELECT x FROM t").fetchone() == (42,)
            assert conn.execute("SELECT current_database()").fetchone() == ("rooms_1",)
        # Unix socket only: no TCP port is opened.
        with psycopg.connect(_libpq(url)) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
    finally:
        server.stop()
    assert folder is not None and not folder.exists()
    server.stop()  # stopping twice is harmless


def test_the_shared_fixture_gives_separate_databases(pg_server):
    a, b = pg_server.create_database("sep_a"), pg_server.create_database("sep_b")
    assert a != b
    with psycopg.connect(_libpq(a)) as conn:
        conn.execute("CREATE TABLE only_in_a (x integer)")
    with psycopg.connect(_libpq(b)) as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)


def test_a_database_name_that_is_not_a_plain_word_is_refused(pg_server):
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        pg_server.create_database("x; DROP DATABASE postgres")
