"""Counts in sentences (issue 17, q17 item 4): "1 row", never "1 rows" or "row(s)" (workstation.words.counted), in
the store's and the recordings' command lines, checked through the real commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from main import main
from workstation.store import ClinicStore
from workstation.words import counted

WORKSTATION = Path(__file__).resolve().parent.parent / "workstation"


@pytest.mark.parametrize(("n", "text"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows"), (1000, "1000 rows")])
def test_counted_says_the_plural_unless_one(n, text):
    assert counted(n, "row") == text


def test_an_irregular_plural_is_given():
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"


def test_store_and_recording_commands_hedge_no_count_with_s_in_brackets():
    """No "(s)" after a word in the command lines and the store/recording code: counted() says it."""
    files = [*WORKSTATION.glob("cli*.py"), *(WORKSTATION / "store").glob("*.py"),
             *(WORKSTATION / "recording").glob("*.py")]
    hedged = [f"{f.name}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
              if re.search(r"\"[^\"]*[a-z]\(s\)[^\"]*\"", line)]  # inside a string
    assert hedged == []


def test_one_trail_row_is_one_row(store_url, capsys, tmp_path):
    with ClinicStore.open(store_url, training=False) as s:
        rows = s._conn.execute("SELECT count(*) FROM audit_trail").fetchone()[0]
    assert main(["trail", "verify", "--store", store_url]) == 0
    out = capsys.readouterr().out
    assert f"audit trail intact: {counted(rows, 'row')}, every link verified" in out
    assert re.search(r"\b1 rows\b", out) is None
    assert main(["recording", "sync", "--list", "--store", store_url, "--clinic-recordings", str(tmp_path)]) == 0
    assert "0 recordings of this workstation" in capsys.readouterr().out


def test_a_share_sentence_ends_once_and_a_folder_given_as_the_store_is_called_a_folder(tmp_path):
    """From the fresh tester of issue 17: "… is it mounted?. The recordings are safe …", and "There is no clinic
    store at /tmp/x (nothing is there)" for a folder."""
    from workstation.recording.share import ShareStatus
    from workstation.store.connection import no_store_error

    down = "the share /mnt/x is not reachable (no such folder): is it mounted?"
    assert "?." not in ShareStatus(tmp_path, 1, problem=down).text()
    assert "mounted?; retrying in 5 s. The recordings" in ShareStatus(tmp_path, 1, problem=down, retry_in_s=5).text()
    assert "(a folder is there" in str(no_store_error(str(tmp_path)))
    assert "(nothing is there" in str(no_store_error(str(tmp_path / "missing.sqlite3")))
