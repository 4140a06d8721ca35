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
from helpers_load import scenario_run

from workstation.bus import detail_number
from workstation.recording import Recording

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tripped_recording(tmp_path_factory) -> Path:
    """A real headless session with an interlock trip, a reset and a resume (contact lost mid-exposure)."""
    return Path(scenario_run("contact-lost-mid-exposure", tmp_path_factory.mktemp("session")).recording)


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
        assert code != 1, (args, code, out.err[-1000:])
        if args[0] == "audit":  # an unreadable limit is not judged, never a made-up one that invents a trip
            assert code == 3, out.out
            assert "EXTRA (" not in out.out and "MISSING (" not in out.out, out.out  # the audit's verdicts
            assert "UNREADABLE at" in out.out and "NOT JUDGED IN FULL: area_dose_cap" in out.out, out.out
            assert "reproduced: contact_lost on light" in out.out, out.out  # what it can judge, it still judges


def test_an_unreadable_limit_leaves_its_interlocks_unjudged_not_the_others(tripped_recording, tmp_path):
    """One limit unreadable: only the interlocks that judge by it are set apart; a trip of another kind the audit
    would invent or miss is still counted (here: needling forbidden where the recording allowed it)."""
    from workstation.session.audit import audit

    dst = tmp_path / tripped_recording.name
    shutil.copy(tripped_recording, dst)
    with h5py.File(dst, "r+") as f:
        rows = f["events"][:]
        for r in rows:
            if r["kind"] == b"limits":
                d = json.loads(r["details_json"])
                d["target_dose_mj_cm2"] = "twelve"
                d["light_allowed"] = False  # readable, and wrong: the replay must say so
                r["details_json"] = json.dumps(d).encode()
        f["events"][...] = rows
    with Recording.open(dst) as rec:
        result = audit(rec)
    assert [w.split(" (")[0] for _t, w, _i in result.unreadable] == ["step limits target_dose_mj_cm2"] * 2
    assert not result.judged_in_full
    assert [a.interlock for a in result.extra] == ["protocol_rule"]  # judged, and different
    assert not result.same


def test_a_stall_without_its_start_leaves_the_watchdog_unjudged(tripped_recording, tmp_path):
    """The watchdog's trips cannot be judged where a stall's start is unreadable: a telemetry_lost the replay makes
    in it is set apart, not called extra."""
    from workstation.session.audit import audit

    dst = tmp_path / tripped_recording.name
    shutil.copy(tripped_recording, dst)
    with h5py.File(dst, "r+") as f:  # a stall of 0.5 s in the middle of the exposure, its start unreadable
        rows = f["events"][:]
        t_mid = float(rows["t_host_s"][len(rows) // 2])
        stall = rows[-1].copy()
        stall["t_host_s"], stall["kind"], stall["source"] = t_mid, b"stall", b"safety"
        stall["details_json"] = json.dumps({"from_t_host_s": "soon", "stall_s": 0.5}).encode()
        stall["message"] = b"watchdog held up"
        f["events"].resize((len(rows) + 1,))
        f["events"][len(rows)] = stall
    with Recording.open(dst) as rec:
        result = audit(rec)
    assert [i for _t, _w, i in result.unreadable] == [("telemetry_lost",)]
    assert not result.judged_in_full and not result.extra and not result.missing


def _limits_edited(src: Path, dst_dir: Path, edit) -> Path:
    """A copy of the recording with `edit(details)` applied to its first `limits` event (the light step's)."""
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        rows = f["events"][:]
        r = next(r for r in rows if r["kind"] == b"limits")
        d = json.loads(r["details_json"])
        edit(d)
        r["details_json"] = json.dumps(d).encode()
        f["events"][...] = rows
    return dst


def test_the_recorder_names_an_infinite_limit_so_the_audit_reads_its_null_as_no_limit(tripped_recording, capsys):
    """to_details keeps an infinite limit a float: the recorder writes null and names it "inf" in `non_finite`, and
    that is the only null the audit reads as no limit (the idle step after the trip has no area cap)."""
    from main import main

    with Recording.open(tripped_recording) as rec:
        idle = [e.details for e in rec.events if e.kind == "limits"][-1]
    assert idle["area_dose_cap_mj_cm2"] is None
    assert "inf" in (idle["non_finite"].get("/area_dose_cap_mj_cm2"), idle["non_finite"].get("area_dose_cap_mj_cm2"))
    assert main(["audit", str(tripped_recording)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("field", ["target_dose_mj_cm2", "max_lamp_temp_c", "dose_tolerance_mj_cm2"])
@pytest.mark.parametrize("note", [None, "nan", "-inf"], ids=["no-note", "nan", "minus-inf"])
def test_a_null_limit_not_noted_as_inf_is_unreadable_not_no_limit(tripped_recording, tmp_path, capsys, field, note):
    """Fresh tester: a null target, lamp limit or tolerance was read as "no limit" silently (exit 0). The recorder
    writes null only for a non-finite number and names it; only a null named "inf" is no limit."""
    from main import main

    def edit(d):
        d[field] = None
        d.pop("non_finite", None)
        if note is not None:
            d["non_finite"] = {f"/{field}": note}

    path = _limits_edited(tripped_recording, tmp_path, edit)
    code = main(["audit", str(path)])
    out = capsys.readouterr().out
    assert code == 3, out
    assert "UNREADABLE at 0." in out and f"step limits {field} (not a value the monitor can use)" in out, out
    assert "EXTRA (" not in out and "MISSING (" not in out, out  # the audit's verdicts, not the integrity warning


@pytest.mark.parametrize("key", ["target_dose_mj_cm2", "/target_dose_mj_cm2"], ids=["plain-key", "json-pointer"])
def test_a_null_limit_is_no_limit_only_where_the_note_names_it_inf(key):
    from workstation.session.kind_rules import StepLimits

    full = StepLimits(area_id="a", light_allowed=True, target_dose_mj_cm2=30.0).to_details()
    assert StepLimits.unreadable(full) == [] and StepLimits.from_details(full).target_dose_mj_cm2 == 30.0
    noted = {**full, "target_dose_mj_cm2": None, "non_finite": {key: "inf"}}
    assert StepLimits.unreadable(noted) == [] and StepLimits.from_details(noted).target_dose_mj_cm2 == float("inf")
    assert StepLimits.unreadable({**full, "target_dose_mj_cm2": None}) == ["target_dose_mj_cm2"]
    assert StepLimits.unreadable({**noted, "non_finite": {key: "nan"}}) == ["target_dose_mj_cm2"]
    assert StepLimits.unreadable({k: v for k, v in full.items() if k != "light_allowed"}) == ["light_allowed"]


def test_detail_number_takes_only_finite_numbers():
    d = {"a": 1, "b": 2.5, "c": None, "d": "3", "e": True, "f": float("nan"), "g": [1]}
    assert [detail_number(d, k, -1.0) for k in "abcdefgh"] == [1.0, 2.5, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]
