"""`main.py inspect` and `main.py export`: the summary's figures and the CSV values, from a known recording."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from helpers_recording import ROWS, check_rows, write_session

import main
from workstation.bus import CommandRecord, Event
from workstation.recording.reader import Recording
from workstation.recording.summary import format_summary, summarize

T0 = 1000.0
EVENTS = [
    Event(T0 + 0.005, "protocol", "info", "session", "Step 1: left cheek.", {"area": "left cheek"}),
    Event(T0 + 7.0, "interlock", "high", "safety", "Target dose reached: light off.",
          {"cause": "dose_reached", "latency_ms": 2.5}),
    Event(T0 + 9.0, "protocol", "info", "session", "Step 2: chin.", {"area": "chin"}),
]


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return write_session(tmp_path_factory.mktemp("cli"), 25.0, EVENTS,
                         [CommandRecord(T0 + 3.0, "light", "start", {"x": 1}, "ack", T0 + 3.002)])


def test_summary_figures(path):
    with Recording.open(path) as rec:
        s = summarize(rec)
    assert [d.samples for d in s.devices] == [50000, 50000] and not any(d.gaps for d in s.devices)
    assert s.devices[0].rate_hz == pytest.approx(2000.0, rel=1e-3)
    assert [e.message for e in s.interlocks] == ["Target dose reached: light off."]
    # exposures: 0-5 s (left cheek), 10-15 s and 20-25 s (chin), each 200 mJ/cm² (40 mW/cm² for 5 s)
    assert [e.area for e in s.exposures] == ["left cheek", "chin", "chin"]
    assert s.dose_per_area_mj_cm2 == pytest.approx({"left cheek": 199.98, "chin": 2 * 199.98}, abs=0.05)


def test_inspect_prints_the_summary(path, capsys):
    assert main.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "duration 25.003 s" in out and "light: light-uvb308 v1.0.0, UVB308 s/n L-0001" in out
    assert "50000 samples" in out and "gaps: 0" in out and "interlock trips: 1" in out
    assert "latency 2.5 ms" in out and "chin: 400.0 mJ/cm²" in out and "SHA-256 matches" in out


def test_inspect_reports_gaps(tmp_path):
    p = write_session(tmp_path, 2.0)
    with h5py.File(p, "r+") as f:  # take out 100 samples of the light
        ds = f["devices/light/telemetry"]
        rows = ds[:]
        kept = np.concatenate([rows[:1000], rows[1100:]])
        ds.resize((len(kept),))
        ds[:] = kept
    with Recording.open(p) as rec:
        gaps = summarize(rec).devices[0].gaps
        assert rec.samples("light") == 3900
        assert "DOES NOT MATCH" in format_summary(rec, summarize(rec))
    assert len(gaps) == 1 and gaps[0].length_s == pytest.approx(100 / 2000.0)
    assert gaps[0].cause == "samples missing" and gaps[0].t_s == pytest.approx(0.5)


def test_export_csv_values_and_range(path, tmp_path, capsys):
    out = tmp_path / "csv"
    assert main.main(["export", str(path), "--csv", str(out), "--start", "1", "--end", "8"]) == 0
    with open(out / "light.csv") as f:
        r = list(csv.DictReader(f))
    expected = ROWS["light"](0, 50000, T0)
    expected = expected[(expected["t_host_s"] - T0 >= 1) & (expected["t_host_s"] - T0 < 8)]
    assert len(r) == len(expected) == 14000
    got = np.array([float(x["irradiance_mw_cm2"]) for x in r], dtype=np.float32)
    np.testing.assert_array_equal(got, expected["irradiance_mw_cm2"])
    np.testing.assert_array_equal([int(x["t_device_us"]) for x in r], expected["t_device_us"])
    got = np.array([float(x["dose_mj_cm2"]) for x in r], dtype=np.float32)  # %.7g round-trips a float32
    np.testing.assert_array_equal(got, expected["dose_mj_cm2"])
    with open(out / "events.csv") as f:
        ev = list(csv.DictReader(f))
    assert [e["kind"] for e in ev] == ["interlock"] and ev[0]["t_s"] == "7.000000"
    with open(out / "commands.csv") as f:
        [cmd] = list(csv.DictReader(f))
    assert cmd["command"] == "start" and (cmd["t_s"], cmd["t_reply_s"]) == ("3.000000", "3.002000")  # session s
    assert (float(cmd["t_host_s"]), float(cmd["t_reply_host_s"])) == (T0 + 3.0, T0 + 3.002)


def test_export_whole_pen(path, tmp_path):
    assert main.main(["export", str(path), "--csv", str(tmp_path)]) == 0
    data = np.genfromtxt(tmp_path / "pen.csv", delimiter=",", names=True)
    assert len(data) == 50000
    np.testing.assert_array_equal(data["cartridge_strokes"], ROWS["pen"](0, 50000)["cartridge_strokes"])


def test_bad_input_is_a_sentence(path, tmp_path, capsys):
    assert main.main(["export", str(path), "--csv", str(tmp_path), "--start", "5", "--end", "2"]) == 2
    assert "--end (2 s) must come after --start (5 s)" in capsys.readouterr().err
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    assert main.main(["inspect", str(bad)]) == 2
    assert "x.h5" in capsys.readouterr().err


def test_check_rows_is_strict():
    rows = ROWS["light"](0, 100)
    rows["lamp_temp_c"][50] += 0.01
    with pytest.raises(AssertionError):
        check_rows("light", rows)


def _trip(t_stop_s: float, device: str, interlock: str) -> Event:
    return Event(T0 + t_stop_s + 0.0001, "interlock", "high", "safety", f"INTERLOCK {interlock} on {device}",
                 {"interlock": interlock, "cause": interlock, "device": device, "latency_ms": 0.1,
                  "stop_written_t_host_s": T0 + t_stop_s})


def test_each_trip_is_reviewed_against_the_telemetry(tmp_path):
    """Synthetic light: exposures 0–5 s, 10–15 s, 20–25 s at 40 mW/cm²; sample i is taken at T0 + (i + 1) × 0.5 ms
    as placed from its frame's arrival and the device clock. The pen runs throughout."""
    trips = [_trip(4.990, "light", "contact_lost"),  # 10 ms before the shutter closed at 5.0 s
             _trip(5.020, "light", "device_fault"),  # the shutter had closed 20 ms earlier
             _trip(7.0, "light", "estop"),  # not emitting at all
             _trip(12.0, "pen", "estop"),  # the pen never stops in this file
             _trip(25.003, "light", "telemetry_lost")]  # the file ends with the light on: nothing after the stop
    p = write_session(tmp_path, 25.0, trips)
    with Recording.open(p) as rec:
        s = summarize(rec)
        text = format_summary(rec, s)
    r = s.trip_reviews
    assert r[0].active_at_stop is True
    assert r[0].stopped_ms == pytest.approx(10.5, abs=1e-6)  # sample 10000 at 5.0005 s
    assert r[0].dose_after_stop_mj_cm2 == pytest.approx(0.40, abs=1e-4)  # samples 9979 → 9999 at 40 mW/cm² (f4)
    assert r[1].active_at_stop is False and r[1].stopped_ms == pytest.approx(-19.5, abs=1e-6)
    assert r[2].active_at_stop is False and r[2].stopped_ms is None
    assert r[3].active_at_stop is True and r[3].stopped_ms is None and not r[3].no_telemetry_after
    assert r[4].active_at_stop is True and r[4].no_telemetry_after
    assert "light stopped 10.5 ms after the stop was written, delivering 0.40 mJ/cm² meanwhile" in text
    assert "light had stopped by itself 19.5 ms before the stop was written" in text
    assert "light was not active" in text
    assert "pen STILL ACTIVE 2 s after the stop was written" in text
    assert "light was active in its last sample and sent none after the stop" in text


def test_a_trip_without_a_device_or_its_telemetry_is_said_so(path):
    with Recording.open(path) as rec:
        (review,) = summarize(rec).trip_reviews
    assert review.device == "" and review.active_at_stop is None
