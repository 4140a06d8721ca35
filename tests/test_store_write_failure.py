"""The clinic store stops taking writes in the middle of a session (its disk full, read-only, its server gone): the
session stops as for a failed recording, ends with its summary and exit 3, its recording closed and checksummed,
and the store is completed from that recording at the next start (fresh tester of issue 12: a store on the disk
that filled crashed the runner with SQLite's "database or disk is full", no summary, the session left in progress).

`PRAGMA query_only` makes the real SQLite store refuse every write ("attempt to write a readonly database"): no mock.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"

VISIT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[3])
    from workstation.session.scenario import load_scenario
    from workstation.session.session import SessionError
    from workstation.session.visit import Visit
    v = Visit.training(load_scenario(sys.argv[1]), sys.argv[2] + "/rec", store_path=sys.argv[2] + "/t.sqlite3")
    v.begin()
    v.store._conn.execute("PRAGMA query_only = 1")  # from now on the store refuses every write
    v.run_step()  # the light step: delivered and recorded; its journal write refused
    refused = []
    for act in (v.run_step, v.resume, v.reset_interlocks):
        try:
            act()
        except Exception as exc:  # noqa: BLE001 - what each refusal says
            refused.append(f"{type(exc).__name__}: {exc}")
    light_after = v.rig.emulators["light"].state().active
    saved = v.end()
    v.close()
    print(json.dumps({"store_failure": saved.store_failure, "sha256": saved.sha256, "recording": str(saved.recording),
                      "held": v.rig.monitor.held, "refused": refused, "light_after": light_after,
                      "state": saved.summary["state"], "abort_reason": saved.summary["abort_reason"],
                      "abort_cause": saved.summary["abort_cause"]}))
""")


def test_a_store_that_stops_taking_writes_stops_the_session_and_is_completed_at_the_next_start(tmp_path):
    done = subprocess.run([sys.executable, "-c", VISIT, str(SCENARIO), str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert "could not be written" in got["store_failure"] and "read-only" in got["store_failure"]
    assert "readonly database" not in got["store_failure"]  # SQLite's own words go to the log
    # third fresh tester: no "then try again" beside "cannot treat again"; what becomes of the session, in words
    assert "try again" not in got["store_failure"] + got["held"]
    assert "completed from its recording at the next start" in got["store_failure"]
    assert got["held"] and "store could not be written" in got["held"]
    assert got["refused"] and all("store could not be written" in r or "paused" in r or "state" in r
                                  for r in got["refused"]), got["refused"]
    assert not got["light_after"] and got["state"] in ("aborted", "partial")
    # third fresh tester (F7): the outcome said "ended by the operator"; it is the failure that ended it
    # seventh session's tester: a training store's failure was called the clinic store's
    assert got["abort_reason"].startswith("the training store could not be written, so it could not go on: ")
    assert "clinic" not in got["store_failure"] + got["held"] + got["abort_reason"] + "".join(got["refused"])
    assert "operator" not in got["abort_reason"], got["abort_reason"]
    assert got["abort_cause"] == "store"  # not "recording": the recording was whole (seventh session)
    assert got["sha256"] and Path(got["recording"]).is_file()  # the recording is whole and checksummed
    with sqlite3.connect(tmp_path / "t.sqlite3") as db:  # the store is behind: the session still in progress
        assert db.execute("SELECT state FROM sessions").fetchall() == [("in_progress",)]

    # the next start (a new process: the one that wrote the session is gone) completes it from its recording
    again = subprocess.run([sys.executable, str(ROOT / "main.py"), "session", "--simulate", "--scenario",
                            str(SCENARIO), "--record", str(tmp_path / "rec2"), "--store", str(tmp_path / "t.sqlite3")],
                           capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert "Traceback" not in again.stderr, again.stderr[-2000:]
    # second fresh tester: it was closed "as interrupted by a crash"; it was the store, and its recording says so
    assert "ended, but the training store never heard its end" in again.stdout, again.stdout[-2000:]
    assert "clinic store" not in again.stdout, again.stdout[-2000:]
    assert "crash" not in again.stdout.split("scenario:")[0], again.stdout[-2000:]
    with sqlite3.connect(tmp_path / "t.sqlite3") as db:
        first = db.execute("SELECT state, outcome_note FROM sessions WHERE id = 1").fetchone()
        doses = db.execute("SELECT modality, dose_mj_cm2 FROM treatments WHERE session_id = 1").fetchall()
    assert first[0] == "aborted" and "store could not be written" in first[1] and "crash" not in first[1], first
    assert doses and doses[0][0] == "light" and doses[0][1] > 0
