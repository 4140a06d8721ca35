"""`audit` on a partial file (a tester: a full-disk recording was audited "0 trips recorded, 0 made: the same trips",
exit 0): the verdict covers only what the file holds, and says so; the exit status is 3, not judged in full."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers_load import run_until_killed

from workstation.recording import Recording
from workstation.session.audit import audit, audit_exit_code, format_audit

ROOT = Path(__file__).resolve().parents[1]


def test_a_partial_recording_is_not_judged_in_full(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"  # a real session that kills itself (SIGKILL) mid-visit: a partial file
    cmd = [sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario", "crash-and-restart", "--record",
           str(rec_dir), "--store", str(tmp_path / "t.sqlite3")]
    killed = run_until_killed(cmd, [tmp_path / "t.sqlite3", rec_dir], timeout=120, cwd=ROOT)
    assert killed.returncode < 0, killed.stdout[-2000:]
    (path,) = rec_dir.glob("*/*.h5")
    with Recording.open(path) as rec:
        assert rec.partial
        result = audit(rec)
        text = format_audit(rec, result)
        assert result.same and audit_exit_code(rec, result) == 3
        held = f"{rec.duration_s:.1f} s"
    last = text.splitlines()[-1]
    assert last == (f"result: the same trips in the {held} the file holds; NOT JUDGED IN FULL: the file is partial, so "
                    "what happened after its last row is not in it"), text
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "audit", str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 3 and "note: " in done.stdout and "is partial" in done.stdout, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith(last), done.stdout
