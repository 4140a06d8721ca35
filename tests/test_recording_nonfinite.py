"""Non-finite samples (NaN, ±inf, values beyond float32) are gaps in the plots, never an error: in the plot buffers,
through a replay of a real recording, and in the live plot widgets. And the tools that read a recording say so when
its checksum does not match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_recording import FRAME, add_devices, frames, meta
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.bus import SessionBus
from workstation.plotbuffer import PlotBuffers, finite_extent
from workstation.recording import Recording, ReplaySource, SessionRecorder

T0 = 1000.0
BAD = np.array([np.nan, np.inf, -np.inf, 1e300], dtype=np.float64)


def _blocks_with_bad_values(n_frames: int, every: int) -> list[np.ndarray]:
    out = []
    for k in range(n_frames):
        b = frames("light", k, 1)[0].copy()
        if k % every == 0:
            with np.errstate(over="ignore"):  # 1e300 in a float32 field: inf, as a corrupt value would be
                b["irradiance_mw_cm2"][k % FRAME] = BAD[k % len(BAD)]
        out.append(b)
    return out


def test_non_finite_samples_are_gaps_in_raw_and_envelope_views() -> None:
    bufs = PlotBuffers({"light": ["irradiance_mw_cm2"]}, capacity_s=60, rate_hz=2000)
    blocks = _blocks_with_bad_values(3000, 7)  # 30 s, a bad sample every 70 ms
    for b in blocks:
        bufs.on_block("light", b)
    sent = np.concatenate([b["irradiance_mw_cm2"] for b in blocks]).astype(np.float32)
    bad = ~np.isfinite(sent)
    t, y = bufs.view("light", "irradiance_mw_cm2", 120.0, None)
    assert len(y) == len(sent)
    np.testing.assert_array_equal(np.isnan(y), bad)  # exactly the bad samples are gaps
    np.testing.assert_array_equal(y[~bad], sent[~bad])
    t, y = bufs.view("light", "irradiance_mw_cm2", 30.0, 600)
    assert len(y) <= 600 and np.all(np.isfinite(y)) and np.all(np.isfinite(t))  # no bucket is all bad here
    lo, hi = finite_extent(y)
    assert lo == float(np.nanmin(np.where(bad, np.nan, sent))) and hi == float(np.nanmax(np.where(bad, np.nan, sent)))


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.one_of(st.floats(width=64), st.sampled_from([float("nan"), float("inf"), 1e39])),
                       min_size=FRAME, max_size=40 * FRAME), points=st.integers(4, 200))
def test_any_values_give_a_view_with_finite_times_and_a_finite_or_no_extent(values, points) -> None:
    n = len(values) // FRAME * FRAME
    block = frames("light", 0, n // FRAME)
    rows = np.concatenate(block)
    with np.errstate(over="ignore"):
        rows["irradiance_mw_cm2"] = values[:n]
    bufs = PlotBuffers({"light": ["irradiance_mw_cm2"]}, capacity_s=1, rate_hz=2000)
    for k in range(0, n, FRAME):
        bufs.on_block("light", rows[k:k + FRAME])
    t, y = bufs.view("light", "irradiance_mw_cm2", 10.0, points)
    assert np.all(np.isfinite(t)) and not np.any(np.isinf(y))
    extent = finite_extent(y)
    assert (extent is None) == (not np.isfinite(y).any())
    if extent is not None:
        assert np.isfinite(extent).all() and extent[0] <= extent[1]


def test_a_block_without_a_finite_host_time_is_skipped() -> None:
    bufs = PlotBuffers({"light": ["irradiance_mw_cm2"]})
    b = frames("light", 0, 1)[0].copy()
    b["t_host_s"] = np.nan
    bufs.on_block("light", b)
    assert bufs.skipped_blocks == 1 and bufs.stats("light").samples_total == 0


@pytest.fixture
def nan_recording(tmp_path: Path) -> Path:
    rec = SessionRecorder.create(tmp_path, meta(), min_free_bytes=0, t0_host_s=T0)
    add_devices(rec)
    rec.start()
    for b in _blocks_with_bad_values(300, 3):
        rec.on_block("light", b)
    for k in range(300):
        b = frames("pen", k, 1)[0].copy()
        b["depth_mm"] = np.nan  # a channel that is never finite: no range to fit, nothing to draw
        rec.on_block("pen", b)
    rec.close()
    return rec.path


def test_a_replayed_recording_with_nan_plots_gaps_without_an_error(qtbot, nan_recording: Path) -> None:
    from workstation.ui.plots import LivePlots, plotted_channels

    bus = SessionBus()
    bufs = PlotBuffers(plotted_channels(), capacity_s=60, rate_hz=2000)
    bus.subscribe(bufs)
    rec = Recording.open(nan_recording)
    src = ReplaySource(rec, bus, speed=100.0)
    src.play()
    assert src.finished.wait(10.0)
    src.close()
    plots = LivePlots(bufs)
    qtbot.addWidget(plots)
    plots.resize(1000, 700)
    plots.show()
    qtbot.waitExposed(plots)
    for decimate in (True, False):
        plots.decimate_toggle.setChecked(decimate)
        plots.refresh()  # the issue: "Cannot set range [nan, nan]" on every refresh
        for panel in plots.panels.values():
            for plot in panel.plots:
                (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
                assert all(np.isfinite([x0, x1, y0, y1]))
    _, y = plots.panels["light"].curves["irradiance_mw_cm2"].getData()  # every sample: the bad ones are gaps
    assert np.isnan(y).any() and np.isfinite(y).any()
    _, depth = plots.panels["pen"].curves["depth_mm"].getData()
    assert len(depth) and np.isnan(depth).all()
    rec.close()


def test_export_and_audit_warn_when_the_checksum_does_not_match(tmp_path: Path, nan_recording: Path, capsys) -> None:
    from main import main

    with open(nan_recording, "ab") as f:  # a byte appended: HDF5 still reads it, the SHA-256 no longer matches
        f.write(b"\0")
    main(["export", str(nan_recording), "--csv", str(tmp_path / "csv")])
    assert "WARNING" in capsys.readouterr().out
    main(["audit", str(nan_recording)])
    out = capsys.readouterr().out
    assert "WARNING" in out and "DOES NOT MATCH" in out
    main(["inspect", str(nan_recording)])
    assert "DOES NOT MATCH" in capsys.readouterr().out


def test_an_empty_checksum_file_is_not_a_tamper_alarm(nan_recording: Path) -> None:
    from workstation.recording import format as fmt
    from workstation.recording.summary import check_checksum

    fmt.checksum_path(nan_recording).write_text("")  # what a crash between create and write used to leave
    check = check_checksum(nan_recording)
    # the signature covers the file's SHA-256 itself: it proves the file intact, the empty sidecar is named
    assert check.intact is True and "empty" in check.text and "changed" not in check.text
