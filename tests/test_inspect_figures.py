"""A fresh tester's findings on `inspect` and the PDF report: the count of non-finite samples is one count (per
device, over the whole recording) in both; a duration or time from host times that are not finite says "unknown" in
words, never "nan" or a silent 0; interlock, alarm and fault codes are shown in words, never as enum names; and one
helper says whether a step delivered something, for the session's outcome and the report's.

Real recordings (headless sessions on the device emulators, with their injected faults), changed with plain h5py;
`inspect` in a real process."""

from __future__ import annotations

import inspect as pyinspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers_load import scenario_run

from drivers.codes import InterlockCause
from drivers.protocol import LightFault, PenFault
from workstation.recording import Recording
from workstation.ui.wording import FAULT_NAMES, device_name

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "seeds" / "scenarios"
UNKNOWN = "unknown (no finite host times)"


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _run(name: str, folder: Path) -> Path:
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    result = run_scenario(load_scenario(SCENARIOS / f"{name}.toml"), folder, out=lambda s: None)
    assert result.recording is not None
    return Path(result.recording)


@pytest.fixture(scope="module")
def combined(tmp_path_factory) -> Path:
    """combined-uneventful: a UV step on the light, then a needling step on the pen."""
    return Path(scenario_run("combined-uneventful", tmp_path_factory.mktemp("combined")).recording)


def _copy(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    return dst


def _set(f: h5py.File, table: str, rows: np.ndarray, channel: str, value: float) -> None:
    ds = f[table]
    for i in rows:
        row = ds[int(i)]
        row[channel] = value
        ds[int(i)] = row


# ---- 1: the non-finite count, one function, the same number ----------------------------------------------------
def _inspect_counts(text: str) -> dict[str, int]:
    """Per device (the name inspect gives), the non-finite samples inspect prints."""
    out, device = {}, None
    for line in text.splitlines():
        if m := re.match(r"^  (\w+): ", line):
            device = m[1]
        elif (m := re.match(r"^    (\d+) samples? with a non-finite value", line)) and device:
            out[device] = int(m[1])
    return out


def _report_counts(lines: list[str], devices) -> dict[str, int]:
    names = {device_name(d): d for d in devices}
    out = {}
    for line in lines:
        if m := re.match(r"^Telemetry of the (.+?): (\d+) samples? with a non-finite value", line):
            out[names[m[1]]] = int(m[2])
    return out


def test_inspect_and_the_report_give_one_count_per_device_inside_and_outside_steps(combined, tmp_path):
    from workstation.ui.report_data import read_report

    copy = _copy(combined, tmp_path)
    with Recording.open(copy) as rec:
        t0 = rec.meta.t0_host_s
        steps = [(e.t_host_s - t0, e.details["modality"], e.details["event"]) for e in rec.events
                 if e.kind == "protocol" and e.details.get("event") in ("step_started", "step_ended")]
        light_t = rec.telemetry("light")["t_host_s"] - t0
        pen_t = rec.telemetry("pen")["t_host_s"] - t0
    light_end = next(t for t, mod, ev in steps if mod == "light" and ev == "step_ended")
    pen_start = next(t for t, mod, ev in steps if mod == "needling" and ev == "step_started")
    inside_light = np.flatnonzero(light_t > 0.5)[:10]  # during the UV step
    outside_light = np.flatnonzero(light_t > light_end + 0.2)[:4]  # the light, during the needling step
    outside_pen = np.flatnonzero((pen_t > 0.2) & (pen_t < pen_start - 0.2))[:3]  # the pen, during the UV step
    inside_pen = np.flatnonzero(pen_t > pen_start + 0.5)[:2]
    # room outside each device's own step (a margin of 0.2 s; how long each side lasts follows the machine's load)
    assert (len(inside_light), len(outside_light), len(outside_pen), len(inside_pen)) == (10, 4, 3, 2), steps
    with h5py.File(copy, "r+") as f:
        _set(f, "devices/light/telemetry", inside_light, "dose_mj_cm2", np.nan)
        _set(f, "devices/light/telemetry", outside_light, "irradiance_mw_cm2", np.inf)
        _set(f, "devices/pen/telemetry", outside_pen, "depth_mm", np.nan)
        _set(f, "devices/pen/telemetry", inside_pen, "stroke_rate_hz", -np.inf)

    shown = _main("inspect", str(copy))
    assert shown.returncode == 0, shown.stderr
    from_inspect = _inspect_counts(shown.stdout)
    assert from_inspect == {"light": 14, "pen": 5}, shown.stdout
    data = read_report(copy)
    from_report = _report_counts(data.lines(), ("light", "pen"))
    assert from_report == from_inspect, data.lines()
    for text in (shown.stdout, "\n".join(data.lines())):
        assert "14 samples with a non-finite value (NaN or ±inf) over the whole recording" in text
        assert "5 samples with a non-finite value (NaN or ±inf) over the whole recording" in text


@pytest.mark.parametrize("scan_rows", [7, 1000])
def test_inspect_counts_each_sample_once_across_its_reads(combined, tmp_path, monkeypatch, scan_rows) -> None:
    """inspect counts non-finite samples in the read it scans for gaps (one row of overlap between reads): a sample
    at a read's edge is counted once, and the count is `nonfinite_samples`'s at any read size."""
    from workstation.recording import summary

    copy = _copy(combined, tmp_path)
    with h5py.File(copy, "r+") as f:
        n = len(f["devices/light/telemetry"])
        edges = sorted({0, scan_rows - 1, scan_rows, 2 * scan_rows - 1, 2 * scan_rows, n - 1})
        _set(f, "devices/light/telemetry", np.array(edges), "irradiance_mw_cm2", np.nan)
    monkeypatch.setattr(summary, "SCAN_ROWS", scan_rows)
    with Recording.open(copy) as rec:
        shown = [d.nonfinite_samples for d in summary.summarize(rec).devices if d.name == "light"]
        assert shown == [summary.nonfinite_samples(rec, "light")] == [len(edges)]


# ---- 2: times from host times that are not finite ---------------------------------------------------------------
def _nan_times(src: Path, dst_dir: Path, tables: tuple[str, ...]) -> Path:
    copy = _copy(src, dst_dir)
    with h5py.File(copy, "r+") as f:
        for table in tables:
            rows = f[table][:]
            rows["t_host_s"] = np.nan
            f[table][:] = rows
    return copy


def _no_nan_words(text: str) -> None:
    text = text.replace("(NaN or ±inf)", "")  # the sentence that names what a non-finite value is
    assert not re.search(r"\bnan\b", text, re.I), text
    assert not re.search(r"\binf\b", text, re.I), text


def test_telemetry_without_finite_host_times_says_unknown_and_the_duration_comes_from_the_events(combined, tmp_path):
    from workstation.ui.report_data import read_report

    copy = _nan_times(combined, tmp_path, ("devices/light/telemetry", "devices/pen/telemetry"))
    with Recording.open(combined) as rec:
        last_event = max(e.t_host_s for e in rec.events) - rec.meta.t0_host_s
    shown = _main("inspect", str(copy))
    assert shown.returncode == 0, shown.stderr
    _no_nan_words(shown.stdout)
    assert "duration 0.000 s" not in shown.stdout and f"duration {last_event:.3f} s" in shown.stdout
    assert f"samples at times {UNKNOWN}" in shown.stdout
    _no_nan_words("\n".join(read_report(copy).lines()))
    with Recording.open(copy) as rec:
        assert rec.duration_s == rec.known_duration_s == pytest.approx(last_event)  # the last event, a command


def test_a_recording_with_no_finite_time_says_its_duration_is_unknown(combined, tmp_path):
    from workstation.ui.report_data import read_report

    copy = _nan_times(combined, tmp_path, ("devices/light/telemetry", "devices/pen/telemetry", "events",
                                           "commands"))
    shown = _main("inspect", str(copy))
    assert shown.returncode == 0, shown.stderr
    _no_nan_words(shown.stdout)
    assert f"duration {UNKNOWN}" in shown.stdout and "duration 0.000 s" not in shown.stdout
    lines = read_report(copy).lines()
    _no_nan_words("\n".join(lines))
    steps = [line for line in lines if line.startswith("Step ")]
    assert steps and all(UNKNOWN in line for line in steps)
    out = tmp_path / "report.pdf"
    done = _main("report", str(copy), "--out", str(out))
    assert done.returncode == 0 and out.stat().st_size > 1000, done.stderr
    with Recording.open(copy) as rec:
        assert rec.known_duration_s is None and rec.duration_s == 0.0  # a number for the replay's clock, said unknown


def test_a_reports_alarm_lines_say_an_unknown_time_in_words(tmp_path):
    from workstation.ui.report_data import read_report

    trip = _run("contact-lost-mid-exposure", tmp_path / "run")
    lines = read_report(_nan_times(trip, tmp_path, ("devices/light/telemetry", "devices/pen/telemetry", "events",
                                                     "commands"))).lines()
    _no_nan_words("\n".join(lines))
    alarms = [line for line in lines if "HIGH — " in line]
    assert alarms and all(line.startswith(f"{UNKNOWN}: ") for line in alarms), lines


def test_the_replay_title_says_an_unknown_duration_in_words(qtbot, window, combined, tmp_path):
    from PyQt6.QtCore import Qt

    copy = _nan_times(combined, tmp_path, ("devices/light/telemetry", "devices/pen/telemetry", "events",
                                           "commands"))
    window.start_page.replay_path.setText(str(copy))
    qtbot.mouseClick(window.start_page.replay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.replay and copy.name in window.replay.title.text(),
                    timeout=15_000)
    title = window.replay.title.text()
    assert f"duration {UNKNOWN}" in title and "0.0 s" not in title
    _no_nan_words(title)


# ---- 3: codes in words ------------------------------------------------------------------------------------------
ENUM_NAMES = {m.name for m in (*LightFault, *PenFault, *InterlockCause)} | {"INTERLOCK"}


def test_every_device_fault_code_has_words_in_the_one_table():
    assert {m.name for m in (*LightFault, *PenFault)} <= set(FAULT_NAMES)


@pytest.mark.parametrize("scenario", ["overtemp-cool-reset-resume", "sensor-low-backup-time",
                                      "contact-lost-mid-exposure", "unplug-mid-exposure"])
def test_inspect_shows_trips_and_faults_in_words(scenario, tmp_path):
    path = _run(scenario, tmp_path)
    with Recording.open(path) as rec:
        kinds = {e.kind for e in rec.events}
    assert "interlock" in kinds  # the scenario's injected fault tripped an interlock
    shown = _main("inspect", str(path))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "interlock trips: 0" not in text
    assert not re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text), text  # no UPPER_CASE code
    assert not {w for w in re.findall(r"\b[A-Z]{2,}\b", text) if w in ENUM_NAMES}, text
    assert not re.search(r"\b(?:fault_injected|device_state|interlock_reset\w*)\b", text), text
    assert "interlock on the UV light" in text


def test_an_interlock_message_without_its_reason_is_named_in_words(tmp_path):
    from helpers_recording import write_session

    from workstation.bus import Event

    trip = Event(1001.0, "interlock", "high", "safety", "INTERLOCK over_temperature on light",
                 {"device": "light", "interlock": "over_temperature", "cause": "over_temperature",
                  "stop_written_t_host_s": 1001.0, "latency_ms": 1.5})
    shown = _main("inspect", str(write_session(tmp_path, 2.0, events=[trip])))
    assert shown.returncode == 0, shown.stderr
    assert "Temperature interlock on the UV light (cause: the device is too hot, latency 1.5 ms)" in shown.stdout
    assert "INTERLOCK" not in shown.stdout and "over_temperature" not in shown.stdout


# ---- 4: one test of "something was delivered" ------------------------------------------------------------------
def test_session_and_report_outcomes_share_one_delivered_test():
    from workstation.session import outcome
    from workstation.ui.report_data import ReportData, StepSpan

    assert "delivered_something(" in pyinspect.getsource(outcome.session_outcome)
    assert "delivered_something(" in pyinspect.getsource(ReportData.outcome)
    for dose in (0.0, 0.01, 12.5, -1.0, float("nan")):
        for passes in (0, 1, 3):
            merged = [{"outcome": "stopped", "delivered_dose_mj_cm2": dose, "passes_done": passes}]
            steps = [object(), object()]
            span = StepSpan(1, "light", "a", 0.0, 1.0, outcome="stopped", delivered_dose_mj_cm2=dose,
                            passes_done=passes)
            report = ReportData(Path("x.h5"), "simulation", "P", "op", "p", "", 1.0, {"steps": [{}, {}]}, [span],
                                [], [], None)
            assert outcome.session_outcome(steps, merged) == report.outcome() == (
                "partial" if outcome.delivered_something(dose, passes) else "aborted")
