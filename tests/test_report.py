"""The session report is drawn from the recording: per step, its telemetry over the step's own time span (checked on
the PDF rendered to PNG with poppler's pdftoppm, and in the PDF's text with pdftotext), the response from the store
in words, the aftercare, the operator's sign-off; `main.py report` writes the same without the window."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers_load import scenario_run

ROOT = Path(__file__).resolve().parents[1]
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                                   reason="poppler-utils is not installed (apt-get install poppler-utils); CI has it")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = scenario_run("combined-uneventful", tmp_path_factory.mktemp("recordings"))
    assert result.recording is not None
    return result.recording


def step_spans(path: Path) -> list[tuple[float, float]]:
    from workstation.recording import Recording

    with Recording.open(path) as rec:
        t0 = rec.meta.t0_host_s
        starts = [e.t_host_s - t0 for e in rec.events if e.details.get("event") == "step_started"]
        ends = [e.t_host_s - t0 for e in rec.events if e.details.get("event") == "step_ended"]
    return list(zip(starts, ends, strict=True))


def make_store(tmp_path: Path, recording: Path) -> Path:
    import datetime as dt

    from workstation.protocols import load_library
    from workstation.recording import Recording
    from workstation.store import ClinicStore
    from workstation.store.records import Response

    with Recording.open(recording) as rec:
        pseudonym = rec.meta.patient_pseudonym
    path = tmp_path / "training.sqlite3"
    lib = load_library()
    with ClinicStore.open(path, training=True) as store:
        patient = store.create_patient(pseudonym)
        area = store.add_area(patient.id, "left-cheek", "face", "hypopigmented_atrophic_scar", 6, "III")
        course = store.create_course(patient.id, lib.get("hypopigmented-atrophic-scar-combined"), [area.id],
                                     dt.date.today())
        session_id = store.add_session(course.id, dt.date.today())
        store.link_recording(session_id, recording, "0" * 64)
        store.add_response(session_id, Response(area.id, erythema_grade=1, repigmentation_band="6-25",
                                                notes="slight itch"))
    return path


def test_report_plots_span_the_steps(qtbot, recording: Path, tmp_path: Path) -> None:
    from workstation.ui.report import write_session_report
    from workstation.ui.report_data import read_report

    data = read_report(recording)
    spans = step_spans(recording)
    assert len(spans) == 2 and [s.modality for s in data.steps] == ["light", "needling"]
    drawn = write_session_report(data, tmp_path / "r.pdf")
    assert [v for d in drawn for v in (d.t_from_s, d.t_to_s)] == pytest.approx([v for s in spans for v in s])
    for step, (t0, t1) in zip(data.steps, spans, strict=True):
        assert step.t_s.min() >= t0 - 0.6 and step.t_s.max() <= t1 + 0.6  # the step's own span, not the idle time
    light = data.steps[0]
    assert np.nanmax(light.series["dose_mj_cm2"]) == pytest.approx(light.delivered_dose_mj_cm2, rel=0.02)
    text = "\n".join(data.lines())
    assert "_" not in text.replace(recording.name, "").split("SHA-256")[0]  # words, not identifiers
    assert "Avoid sun" in text and "UV delivered this session: 260 mJ/cm²" in text


@needs_poppler
def test_the_cli_report_renders_with_the_response_in_words(recording: Path, tmp_path: Path) -> None:
    store = make_store(tmp_path, recording)
    out = tmp_path / "report.pdf"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", str(recording), "--out", str(out),
                          "--store", str(store)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "response included" in run.stdout
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "erythema grade 1 (faint pink, gone within a day)" in text and "repigmentation 6–25 %" in text
    assert "Signature:" in text and "Operator: trainee-01" in text and "not a clinical record" in text
    shown = [(float(a), float(b)) for a, b in re.findall(r"step from ([\d.]+) s to ([\d.]+) s", text)]
    expected = [v for s in step_spans(recording) for v in s]
    assert [v for s in shown for v in s] == pytest.approx(expected, abs=0.051)  # each plot over its step's span
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages
    from PyQt6.QtGui import QImage

    def rgb(page: Path) -> np.ndarray:
        ptr = QImage(str(page)).convertToFormat(QImage.Format.Format_RGB888)
        flat = np.frombuffer(ptr.constBits().asstring(ptr.sizeInBytes()), np.uint8)
        return flat.reshape(ptr.height(), ptr.bytesPerLine())[:, :ptr.width() * 3].reshape(ptr.height(), -1, 3)

    images = [rgb(p) for p in pages]  # the plots follow the text, on whichever page it ends

    def near(colour: tuple[int, int, int]) -> int:
        return sum(int((np.abs(px.astype(int) - colour).sum(axis=2) < 60).sum()) for px in images)

    assert near((0xE6, 0x9F, 0x00)) > 100  # the irradiance curve
    assert near((0x00, 0x9E, 0x73)) > 100  # the stroke-rate curve


def test_the_cli_report_refuses_what_is_not_a_recording(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    missing = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", str(tmp_path / "none.h5")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0 and "There is no recording" in missing.stderr
    bogus = tmp_path / "x.h5"
    bogus.write_text("no")
    bad = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", str(bogus)], capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "error:" in bad.stderr


def test_a_recording_its_recorder_stopped_early_is_not_called_a_crash_in_the_report(tmp_path):
    """Fifth fresh tester of issue 12: a recording cut short by a full disk (its recorder closed it with the reason)
    gave a report saying "The session was interrupted (a crash, or the program was closed)" and each open step
    "the program ended during this step (a crash …)", beside a window that said the recording failed. The report
    says the recording stopped, why, and that its amounts are a lower bound."""
    import h5py
    from helpers_recording import write_session

    from workstation.bus import Event
    from workstation.ui.report_data import RECORDING_STOPPED, UNENDED, read_report

    started = Event(1000.5, "protocol", "info", "session", "step 1 started: light on a",
                    {"event": "step_started", "step_index": 0, "modality": "light", "area": "a", "area_id": "1",
                     "target_dose_mj_cm2": 100.0})
    path = write_session(tmp_path, 2.0, events=[started])
    crashed = read_report(path)
    assert "(a crash, or the program was closed" in crashed.outcome_sentence()  # no end recorded, no reason: a crash
    reason = "The disk holding the recording is full (no space left, below the 50 MB reserve): recording stopped."
    with h5py.File(path, "r+") as f:  # as the recorder closes a recording it had to stop
        f.attrs["closed_cleanly"] = False
        f.attrs["close_note"] = reason
    data = read_report(path)
    sentence = data.outcome_sentence()
    assert "crash" not in sentence and "The recording stopped before the session ended (" in sentence
    assert "The disk holding the recording is full" in sentence
    assert "at least what was delivered" in sentence
    assert [s.outcome for s in data.steps] == [RECORDING_STOPPED] and UNENDED not in "\n".join(data.lines())


@needs_poppler
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "no .sig"])
@pytest.mark.parametrize("saved", [b"\x9c\xff\x00\x81 not text", "hello\n".encode("utf-16"), b"hello\n",
                                   b"0" * 63 + b"\n", b"\x00" * 64, b"73cb" * 16 + b"  other.h5\n"],
                         ids=["random bytes", "utf-16", "text", "cut", "nuls", "another file's"])
def test_the_report_prints_the_files_own_sha256_whatever_its_sha256_file_holds(tmp_path, saved, signed):
    """A second fresh tester of issue 12: `report` stopped on "an internal error" (UnicodeDecodeError) when the .sha256
    was not text, and printed whatever the .sha256 held as the recording's SHA-256 beside a valid signature, with no
    warning. The PDF gives the file's own SHA-256, and says which sidecar is wrong."""
    from helpers_recording import write_session

    from workstation.checksum import sha256_of
    from workstation.recording.format import checksum_path, signature_path

    rec = write_session(tmp_path / "rec", 0.5)
    digest = sha256_of(rec)
    checksum_path(rec).write_bytes(saved)
    if not signed:
        signature_path(rec).unlink()
    out = tmp_path / "report.pdf"
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "report", str(rec), "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                         timeout=120)
    said = run.stdout + run.stderr
    assert run.returncode == 0 and "internal error" not in said and "Traceback" not in said, said
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)
    assert f"RecordingSHA-256:{digest}" in flat, text
    assert not re.search("[\ufb00-\ufb06]", text), text  # no ligature: "ff" in a digest copied out as one glyph
    if signed:  # proven by its signature: the .sha256 is named as the one at fault, the recording is not doubted
        assert "iswrong,nottherecording" in flat and "NOTPROVENINTACT" not in flat, text
    else:
        assert "isnotprovenintact" in flat and "SIGNATUREMISSING" in flat and "NOTPROVENINTACT" in flat, text
