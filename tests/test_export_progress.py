"""`main.py export` on long work and bad ranges: a range outside the file is refused with the file's span (nothing
written), and progress is reported as rows are written."""

from __future__ import annotations

from pathlib import Path

import pytest

import main
from tests.helpers_recording import write_session
from workstation.recording.export import export_csv
from workstation.recording.reader import Recording


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(tmp_path_factory.mktemp("rec"), 10.0)


@pytest.mark.parametrize("args,words", [
    (["--start", "50"], "--start 50 s is at or after the end"),
    (["--end", "-1"], "--end -1 s is at or before the start"), (["--end", "0"], "--end 0 s is at or before"),
    (["--start", "10.5", "--end", "20"], "--start 10.5 s is at or after the end")])
def test_a_range_outside_the_file_is_refused_with_its_span(path: Path, tmp_path: Path, capsys, args, words) -> None:
    out = tmp_path / "csv"
    assert main.main(["export", str(path), "--csv", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "spans 0–10.0 s" in err and "nothing was exported" in err
    assert "(500–" not in err and "(0–0 s)" not in err  # never a backwards or empty range (v15 finding 13)
    assert not out.exists()


@pytest.mark.parametrize("args,exported", [(["--start", "-5", "--end", "4"], "exporting 0–4.0 s"),
                                           (["--start", "6", "--end", "30"], "exporting 6–10.0 s")])
def test_a_range_partly_outside_is_said_and_cut_to_the_file(path: Path, tmp_path: Path, capsys, args,
                                                             exported) -> None:
    assert main.main(["export", str(path), "--csv", str(tmp_path / "csv"), *args]) == 0
    err = capsys.readouterr().err
    assert "goes beyond" in err and exported in err


def test_progress_counts_every_row(path: Path, tmp_path: Path, monkeypatch) -> None:
    import workstation.recording.export as export

    monkeypatch.setattr(export, "SLAB_ROWS", 5000)
    seen: list[tuple[int, int]] = []
    with Recording.open(path) as rec:
        export_csv(rec, tmp_path, 2.0, 8.0, lambda done, total: seen.append((done, total)))
        expected = sum(rec.row_at(d, 8.0) - rec.row_at(d, 2.0) for d in rec.devices)
    assert len(seen) > 2 and seen[-1] == (expected, expected)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
