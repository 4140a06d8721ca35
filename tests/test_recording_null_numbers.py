"""A number the format writes as `null` (non-finite), or text where a number belongs (an older or foreign file), in
ANY event detail or command arg of a real recording: inspect, audit, report, export and replay read it without an
internal error (fresh tester of issue 12: a null `stop_written_t_host_s`, `from_t_host_s`, `step_index` or
`delivered_dose_mj_cm2` crashed inspect, audit and report)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest

from workstation.bus import detail_number
from workstation.recording import Recording

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tripped_recording(tmp_path_factory) -> Path:
    """A real headless session with an interlock trip, a reset and a resume (contact lost mid-exposure)."""
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    folder = tmp_path_factory.mktemp("session")
    result = run_scenario(load_scenario(ROOT / "seeds" / "scenarios" / "contact-lost-mid-exposure.toml"), folder,
                          out=lambda s: None)
    return Path(result.recording)


def _replace_numbers(value, by):
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return by
    if isinstance(value, dict):
        return {k: _replace_numbers(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_numbers(v, by) for v in value]
    return value


def _every_number_replaced(src: Path, dst_dir: Path, by) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        for table, column in (("events", "details_json"), ("commands", "args_json")):
            rows = f[table][:]
            for r in rows:
                r[column] = json.dumps(_replace_numbers(json.loads(r[column]), by)).encode()
            f[table][...] = rows
    return dst


@pytest.mark.parametrize("by", [None, "12 ms", [1.0]], ids=["null", "text", "list"])
def test_every_number_unreadable_in_every_detail_no_command_fails(tripped_recording, tmp_path, capsys, by):
    from main import main

    with Recording.open(tripped_recording) as rec:
        assert any(e.kind == "interlock" for e in rec.events)  # the trip, its stop time and latency are there
    path = _every_number_replaced(tripped_recording, tmp_path, by)
    for args in (["inspect", str(path)], ["audit", str(path)], ["report", str(path), "--out", str(tmp_path / "r.pdf")],
                 ["export", str(path), "--csv", str(tmp_path / "csv")]):
        code = main(args)
        out = capsys.readouterr()
        assert "internal error" not in out.err and "Traceback" not in out.err, (args, out.err[-2000:])
        assert code != 1 or args[0] == "audit", (args, code, out.err[-1000:])  # audit: 1 = the trips differ


def test_detail_number_takes_only_finite_numbers():
    d = {"a": 1, "b": 2.5, "c": None, "d": "3", "e": True, "f": float("nan"), "g": [1]}
    assert [detail_number(d, k, -1.0) for k in "abcdefgh"] == [1.0, 2.5, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
