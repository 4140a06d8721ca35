"""A command that only reads never creates a store (issue 17, q17 item 2): given a place where no store is (a path,
an `sqlite:///` URL into a folder that does not exist, an empty file, an empty PostgreSQL database) it says so in
words, exits 2 (bad input), and nothing is created: no file, no folder, no tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from main import main
from workstation.errors import UserError
from workstation.store import ClinicStore

READING = [
    ["operators", "list"],
    ["trail", "verify"],
    ["trail", "show"],
    ["trail", "show", "--last", "3"],
    ["devices"],
    ["patient", "export", "P-0042", "--out", "{out}"],
    ["recording", "sync", "--list", "--clinic-recordings", "{out}"],
    ["verify", "{rec}"],
]


def _args(command: list[str], out: Path, store: str) -> list[str]:
    """The command with its folder (`out`, kept empty) and a file to verify (not a recording: the store is opened
    before the file is read) filled in."""
    rec = out.parent / "recording.h5"
    rec.write_bytes(b"not read before the store is opened")
    return [a.replace("{out}", str(out)).replace("{rec}", str(rec)) for a in command] + ["--store", store]


@pytest.mark.parametrize("form", ["path", "url"])
@pytest.mark.parametrize("command", READING, ids=lambda c: " ".join(c[:2]))
def test_a_reading_command_given_no_store_creates_nothing(tmp_path, capsys, command, form):
    missing = tmp_path / "missing" / "folder" / "x.sqlite3"
    out = tmp_path / "out"
    out.mkdir()
    store = str(missing) if form == "path" else f"sqlite:///{missing}"
    assert main(_args(command, out, store)) == 2
    captured = capsys.readouterr()
    assert f"no clinic store at {missing}" in captured.err.replace("There is no", "no"), captured.err
    assert "nothing was created" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "missing").exists()  # not the store, not its folder
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", READING[:5], ids=lambda c: " ".join(c[:2]))
def test_an_empty_file_is_not_made_a_store_by_a_reading_command(tmp_path, capsys, command):
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    assert main(_args(command, tmp_path, f"sqlite:///{empty}")) == 2
    assert "an empty file is there" in capsys.readouterr().err
    assert empty.stat().st_size == 0


def test_an_empty_database_is_not_made_a_store_by_a_reading_command(pg_server, tmp_path, capsys):
    url = pg_server.create_database("q17_empty")
    for command in READING:
        assert main(_args(command, tmp_path, url)) == 2, command
        err = capsys.readouterr().err
        assert "an empty database is there" in err and "nothing was created" in err, (command, err)
    with pytest.raises(UserError, match="no clinic store"):
        ClinicStore.open(url, training=False, read_only=True)
    with ClinicStore.open(url, training=False) as s:  # still empty: the first (writing) open makes the store
        assert s.trail_findings == []
        assert s._conn.execute("SELECT count(*) FROM audit_trail WHERE table_name = 'operators'").fetchone()[0] == 0


def test_reading_commands_still_read_an_existing_store(store_url, tmp_path, capsys):
    with ClinicStore.open(store_url, training=False) as s:
        s.create_patient("P-0042")
    assert main(["operators", "list", "--store", store_url]) == 0
    assert "no accounts yet" in capsys.readouterr().out
    assert main(["trail", "verify", "--store", store_url]) == 0
    assert "audit trail intact" in capsys.readouterr().out
    assert main(["devices", "--store", store_url]) == 0
    assert "Devices on record (0)" in capsys.readouterr().out


def test_a_store_that_writes_is_still_created_where_asked(tmp_path):
    made = tmp_path / "new" / "clinic.sqlite3"
    with ClinicStore.open(f"sqlite:///{made}", training=False) as s:
        assert s.role == "clinic"
    assert made.is_file()
