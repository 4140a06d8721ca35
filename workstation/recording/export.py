"""CSV export of a recording: one file per device, one for events, one for commands; a time range in session s.

Columns keep the block field names (they carry their units, e.g. `irradiance_mw_cm2`), after `t_s`, the session
time. Rows are written in slabs, so an hour-long recording never sits in memory.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workstation.recording.clean import dumps
from workstation.recording.errors import RecordingError, in_words
from workstation.recording.reader import Recording
from workstation.recording.share import part_path, remove_stale_parts
from workstation.recording.summary import finite_rows

SLAB_ROWS = 200_000


def _fmt(dtype: np.dtype, name: str) -> str:
    kind, size = dtype[name].kind, dtype[name].itemsize
    if kind == "f":
        return "%.6f" if name == "t_host_s" else ("%.7g" if size == 4 else "%.15g")
    return "%d"


def export_csv(rec: Recording, out_dir: str | Path, t_start_s: float | None = None,
               t_end_s: float | None = None, progress: Callable[[int, int], None] | None = None,
               nonfinite: dict[str, int] | None = None) -> list[Path]:
    """Write `<device>.csv`, `events.csv` and `commands.csv` into out_dir; return the files written.
    `progress(rows_done, rows_total)` is called after every slab of telemetry rows. Samples with a non-finite
    value are written as they are (`nan`, `inf`), and counted per device in `nonfinite` if given (finite_rows).

    All of it or nothing: each file is written under a temporary name (`.<name>.<workstation>.<pid>.part`, what an
    export or a copy to the share stopped in the middle left is removed first: share.part_path) and given its own name
    only once every file is complete, so an export that fails (RecordingError for a full or refusing disk; a
    damaged file, Ctrl+C) leaves the folder as it was, an earlier export's files in it included, and removes the
    folders it created."""
    if not np.isfinite(rec.meta.t0_host_s):  # a damaged or edited root attribute: every t_s would be NaN
        raise RecordingError(f"{rec.path.name} cannot be exported: its start time (t0_host_s) is not a finite number, "
                             "so no session time (t_s) can be given; nothing was written.")
    out = Path(out_dir)
    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this export creates, deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove([], made)
        raise RecordingError(f"Cannot create the export folder {out}{in_words(exc) or ': the system refused it'}.") from exc
    lo = -np.inf if t_start_s is None else t_start_s
    hi = np.inf if t_end_s is None else t_end_s
    t0 = rec.meta.t0_host_s
    written: list[Path] = []  # the complete files, under their temporary names
    final: dict[Path, Path] = {}  # temporary name -> the file's own name
    renamed = False  # whether a complete file has taken its own name (replacing an earlier export's)
    path: Path | None = None  # the file being written (its temporary name)
    spans = {name: (0 if t_start_s is None else rec.row_at(name, t_start_s),
                    rec.samples(name) if t_end_s is None else rec.row_at(name, t_end_s)) for name in rec.devices}
    total, done = sum(max(0, b - a) for a, b in spans.values()), 0
    try:
        for name, info in rec.devices.items():
            path = _partial(out / f"{name}.csv", final)
            names = list(info.dtype.names or ())
            fmts = ["%.6f"] + [_fmt(info.dtype, n) for n in names]
            i0, i1 = spans[name]
            with open(path, "w", newline="") as f:
                f.write(",".join(["t_s", *names]) + "\n")
                for a in range(i0, i1, SLAB_ROWS):
                    rows = rec.rows(name, a, min(a + SLAB_ROWS, i1))
                    if nonfinite is not None:
                        nonfinite[name] = nonfinite.get(name, 0) + finite_rows(rows)[1]
                    cols = [rows["t_host_s"] - t0] + [rows[n] for n in names]
                    table = np.empty((len(rows), len(cols)), dtype=object)
                    for j, c in enumerate(cols):
                        table[:, j] = c.tolist()
                    np.savetxt(f, table, fmt=fmts, delimiter=",")
                    done += len(rows)
                    if progress is not None:
                        progress(done, total)
            written.append(path)
        path = _partial(out / "events.csv", final)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_s", "t_host_s", "kind", "severity", "source", "message", "details_json"])
            for e in rec.events:
                if lo <= e.t_host_s - t0 < hi:
                    # texts and JSON as the reader gives them: by the text rule, changed bytes noted (rows.py)
                    w.writerow([f"{e.t_host_s - t0:.6f}", f"{e.t_host_s:.6f}", *map(as_text_cell, (
                        e.kind, e.severity, e.source, e.message)), dumps(e.details)])
        written.append(path)
        path = _partial(out / "commands.csv", final)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            # every *_s column in session seconds like t_s, its host clock beside it (fourth fresh tester: the reply
            # time was the host's beside t_s in session seconds)
            w.writerow(["t_s", "t_host_s", "device", "command", "args_json", "result", "t_reply_s", "t_reply_host_s"])
            for c in rec.commands:
                if lo <= c.t_host_s - t0 < hi:
                    w.writerow([f"{c.t_host_s - t0:.6f}", f"{c.t_host_s:.6f}", as_text_cell(c.device),
                                as_text_cell(c.command), dumps(c.args),
                                as_text_cell(c.result), f"{c.t_reply_s - t0:.6f}", f"{c.t_reply_s:.6f}"])
        written.append(path)
        path = None
        for i, (tmp, dst) in enumerate([(p, final[p]) for p in written]):
            os.replace(tmp, dst)  # within one folder: a rename that fails is a failing disk, not a full one
            written[i], renamed = dst, True  # in place now: removed with the rest if a later rename fails
    except BaseException as exc:  # all of it or nothing, whatever stopped it (a full disk, a damaged file, Ctrl+C)
        _remove([*written, *([path] if path is not None else [])], made)
        if isinstance(exc, OSError):
            raise RecordingError(f"Writing the CSV export into {out} failed{in_words(exc)}; nothing of it was kept"
                                 f"{'' if made or renamed else ', and what the folder held before is as it was'}.") from exc
        raise
    return list(final.values())


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet takes for the start of a formula in a cell it opens from a CSV (OWASP, "CSV injection")."""


def as_text_cell(text: str) -> str:
    """A text for a CSV cell that a spreadsheet shows as text: one starting as a formula does (FORMULA_STARTS) gets a
    leading ' (a device's status text "=HYPERLINK(…)" is not run when the export is opened in a spreadsheet). The
    JSON columns always start with "{" and the numbers are written by the program, so neither is changed."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _partial(path: Path, final: dict[Path, Path]) -> Path:
    """The temporary name a file of the export is written under until the whole export is complete, noted in
    `final`; a temporary file of the same name left by an export that stopped in the middle is removed first."""
    remove_stale_parts(path)
    tmp = part_path(path)
    final[tmp] = path
    return tmp


def _remove(files: list[Path], folders: list[Path]) -> None:
    """Remove an export that did not finish: its files, then the folders it created (deepest first, only empty)."""
    for f in files:
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass
