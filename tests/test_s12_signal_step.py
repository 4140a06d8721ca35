"""A signal in the middle of a step ends that step in the record as any other stop does (a fresh tester of issue 12:
SIGTERM during a needling pass left no "step interrupted" event in the recording and no "needling: interrupted" line
in the summary, whose delivered passes then read as if the step had run). Real subprocesses, each signalled at one
chosen line (tests/signal_inject.py): as the needling step's first pass starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_load import with_internal_error

from workstation.recording import Recording

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"  # a light step, then a needling step


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_a_needling_pass_ends_the_step_as_interrupted_in_the_file_and_the_summary(tmp_path: Path,
                                                                                               signum: int,
                                                                                               code: int) -> None:
    env = {**os.environ, "INJECT_AT": "_step_event", "INJECT_AFTER": "_run_needling", "INJECT_SIGNAL": str(int(signum))}
    cmd = [sys.executable, str(ROOT / "tests" / "signal_inject.py"), "session", "--simulate", "--scenario",
           str(SCENARIO), "--record", str(tmp_path / "rec")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    shown = with_internal_error(done.stdout + done.stderr)  # a load trip's words, for the rerun rule
    assert "INJECTED _step_event" in done.stderr, shown
    assert done.returncode == code, shown
    assert "Traceback" not in done.stderr, shown
    assert any(line.strip().startswith("area ") and "needling: interrupted" in line
               for line in done.stdout.splitlines()), shown
    (path,) = (tmp_path / "rec").glob("*/*.h5")
    with Recording.open(path) as r:
        ended = [e for e in r.events if e.kind == "protocol" and e.details.get("event") == "step_ended"]
    assert [e.details["outcome"] for e in ended] == ["done", "interrupted"], [e.message for e in ended]
    assert ended[-1].details["modality"] == "needling" and ended[-1].details["passes_done"] == 1
    assert ended[-1].message.startswith("step 2 interrupted: ")
