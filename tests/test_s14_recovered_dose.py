"""After a full disk, crash recovery and `inspect` never count less light than the session itself recorded at the
step's end (a second fresh tester of issue 12, 3 of 3 full-disk runs: the recorder stopped while the light ran on to
its stop; the step_ended event written by the closing reopen said 260.0 mJ/cm², and the store got 125.6 from the
telemetry alone, inspect showing the same). A real session with its store; its file changed with plain h5py as a
recorder stopped by a full disk leaves it: the light's telemetry cut, the samples counted lost, no end time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from workstation.bus import detail_number
from workstation.recording import Recording
from workstation.recording.format import LOSS_DTYPE
from workstation.session.journal import WRITE_FAILED, close_crashed_sessions, deliveries_from_recording
from workstation.session.runner import run_scenario
from workstation.session.scenario import load_scenario
from workstation.store import ClinicStore

ROOT = Path(__file__).resolve().parents[1]


def _step_dose(path: Path) -> float:
    with Recording.open(path) as rec:
        [ended] = [e for e in rec.events if e.kind == "protocol" and e.details.get("event") == "step_ended"
                   and e.details.get("modality") == "light"]
        return detail_number(ended.details, "delivered_dose_mj_cm2", 0.0)


def _as_a_full_disk_left_it(path: Path) -> float:
    """Cut the light's telemetry to its first third (the rest counted lost, as the recorder counts what it could not
    write) and remove the end time. Returns the light dose the telemetry left shows."""
    with h5py.File(path, "r+") as f:
        tel = f["devices/light/telemetry"]
        n = len(tel)
        kept = tel[: n // 3]
        tel.resize((n // 3,))
        tel[...] = kept
        losses = f["devices/light/losses"]
        row = np.array([(kept["t_host_s"][-1], kept["t_host_s"][-1] + 1.0, n - n // 3)], dtype=LOSS_DTYPE)
        losses.resize((len(losses) + 1,))
        losses[-1] = row[0]
        del f.attrs["end_time_utc"]
    [light] = [t for t in deliveries_from_recording(path) if t.modality == "light"] or [None]
    return light.dose_mj_cm2 if light is not None else 0.0


def test_recovery_and_inspect_count_the_steps_own_dose_where_the_telemetry_stopped_early(tmp_path: Path) -> None:
    store_path = tmp_path / "t.sqlite3"
    result = run_scenario(load_scenario(ROOT / "seeds" / "scenarios" / "combined-uneventful.toml"), tmp_path / "rec",
                          store_path=store_path, out=lambda s: None)
    path = Path(result.recording)
    step = _step_dose(path)
    assert step > 100  # the exposure ran (260 mJ/cm² planned)
    with h5py.File(path, "r") as f:
        before = len(f["devices/light/telemetry"])
    with h5py.File(path, "r+") as f:  # telemetry only, as if the step record were not there: what the store got
        rows = f["events"][:]
        kept = rows[[b'"step_ended"' not in r["details_json"] for r in rows]]
        f.create_dataset("events_saved", data=rows)
        f["events"].resize((len(kept),))
        f["events"][...] = kept
    telemetry_only = _as_a_full_disk_left_it(path)
    with h5py.File(path, "r+") as f:
        saved = f["events_saved"][:]
        f["events"].resize((len(saved),))
        f["events"][...] = saved
        del f["events_saved"]
        assert len(f["devices/light/telemetry"]) == before // 3
    assert 0 < telemetry_only < step - 50, (telemetry_only, step)  # what the tester's store held: far too little

    [light] = [t for t in deliveries_from_recording(path) if t.modality == "light"]
    assert light.dose_mj_cm2 == pytest.approx(step, abs=1e-3)
    with ClinicStore.open(store_path, training=True) as store:
        with store.transaction() as db:
            db.execute("UPDATE sessions SET state = 'in_progress', process = '999999999:1', ended_at = NULL")
            db.execute("DELETE FROM treatments")
        [closed] = close_crashed_sessions(store)
    assert WRITE_FAILED in closed.note, closed.note  # the file was closed and its reserve given back: not a crash
    with sqlite3.connect(store_path) as c:
        [(dose,)] = c.execute("SELECT dose_mj_cm2 FROM treatments WHERE modality = 'light'").fetchall()
    assert dose == pytest.approx(step, abs=1e-3)

    shown = subprocess.run([sys.executable, str(ROOT / "main.py"), "inspect", str(path)], capture_output=True,
                           text=True, timeout=120, cwd=ROOT)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lost_line = next(line for line in shown.stdout.splitlines() if "lost by the recorder are not in these doses" in line)
    assert f"the session's own step records say: left-cheek {step:.1f} mJ/cm²" in lost_line, lost_line
