"""The recorded telemetry as the blocks its driver published, for the audit (workstation/session/audit.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from workstation.recording.reader import Recording
from workstation.recording.summary import finite_rows

CHUNK_ROWS = 1 << 16


def recorded_frames(rec: Recording, device: str, skipped: dict[str, list]) -> Iterator[tuple[float, int, str, Any]]:
    """The device's telemetry as the blocks the driver published: one per frame (its samples share `seq`). Samples
    with a non-finite value are left out (a driver never publishes one), counted in `skipped[device]` as [how many,
    the first one's frame time]; a frame left with none is given as None: it arrived, so the watchdog hears it."""
    pending: np.ndarray | None = None
    for i in range(0, rec.samples(device), CHUNK_ROWS):
        rows = rec.rows(device, i, i + CHUNK_ROWS)
        if pending is not None:
            rows = np.concatenate([pending, rows])
        if not len(rows):
            continue
        clean = not finite_rows(rows)[1]
        starts = np.r_[0, np.flatnonzero(rows["seq"][1:] != rows["seq"][:-1]) + 1]
        for a, b in itertools.pairwise(starts.tolist()):
            if clean:
                yield float(rows["t_host_s"][b - 1]), 1, device, rows[a:b]
            else:
                yield from _frame(rows[a:b], device, skipped)
        pending = rows[starts[-1]:]  # the last frame may go on in the next chunk
    if pending is not None and len(pending):
        yield from _frame(pending, device, skipped)


def _frame(rows: np.ndarray, device: str, skipped: dict[str, list]) -> Iterator[tuple[float, int, str, Any]]:
    """One frame, its non-finite samples left out and counted (`recorded_frames`); nothing if it has no arrival time."""
    good, n_bad = finite_rows(rows)
    times = rows["t_host_s"][np.isfinite(rows["t_host_s"])]
    t = float(times[-1]) if len(times) else None  # a frame's samples share its arrival time
    if n_bad:
        seen = skipped.setdefault(device, [0, t])
        seen[0] += n_bad
        seen[1] = t if seen[1] is None else seen[1]
    if t is not None:
        yield t, 1, device, (good if len(good) else None)
