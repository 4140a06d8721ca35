"""A patient's pseudonymous bundle, for a transfer or a second opinion: the store's rows as JSON (export_patient:
no identifying field), every linked recording with its .sha256 and .sig, and each session's PDF report when there is
one."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from workstation.checksum import sha256_of
from workstation.errors import UserError
from workstation.recording.format import report_path, sidecar_paths
from workstation.store.clinic_store import ClinicStore


@dataclass
class Bundle:
    folder: Path
    files: list[Path] = field(default_factory=list)  # written, relative to folder
    problems: list[str] = field(default_factory=list)  # sentences: a recording missing or changed


def write_patient_bundle(store: ClinicStore, pseudonym: str, out_dir: Path) -> Bundle:
    """Write `out_dir`/<pseudonym>/: patient.json (export_patient, plus for each session the bundle's file names),
    recordings/<YYYY-MM-DD>/<uuid>.h5 with .sha256, .sig and -report.pdf beside. A recording that is missing or whose
    SHA-256 differs from the store's index is listed in `problems` (and in patient.json); everything else is still
    written. Raises UserError if the patient is unknown or the folder already exists."""
    doc = store.export_patient(pseudonym)  # UserError if unknown
    folder = Path(out_dir).expanduser() / pseudonym
    if folder.exists():
        raise UserError(f"{folder} already exists; choose another --out folder (nothing is overwritten).")
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"The folder {folder} could not be created ({exc.strerror}).") from exc
    bundle = Bundle(folder)
    for course in doc["courses"]:
        for session in course["sessions"]:
            session["bundle_files"] = _copy_session_files(store, session, bundle)
    doc["problems"] = bundle.problems
    (folder / "patient.json").write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                         encoding="utf-8")
    bundle.files.insert(0, Path("patient.json"))
    return bundle


def _copy_session_files(store: ClinicStore, session: dict, bundle: Bundle) -> list[str]:
    source = store.recording_path(session["id"])
    if source is None:
        return []
    target = Path("recordings") / source.parent.name / source.name
    if not source.is_file():
        bundle.problems.append(f"{store.session_label(session['id'])}: the recording {source} is missing.")
        return []
    if sha256_of(source) != session["recording_sha256"]:
        bundle.problems.append(f"{store.session_label(session['id'])}: the recording {source} does not match the "
                               "SHA-256 in the store (it changed after it was indexed); it is copied as found.")
    written = []
    for src, dst in ((source, target), *zip(sidecar_paths(source), sidecar_paths(target), strict=True),
                     (report_path(source), report_path(target))):
        if src.is_file():
            (bundle.folder / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, bundle.folder / dst)
            bundle.files.append(dst)
            written.append(dst.as_posix())
    return written
