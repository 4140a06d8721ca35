"""Plots a clinician reads at a glance: the legend is outside the data area (the plot's title line), the axis text
is dark, the light's skin contact is plotted, a silent device's curves end with a gap on the shared time axis and
resume after it, non-finite samples are gaps, and a course chart with one point gets a range that starts at 0."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyqtgraph as pg

from drivers.channels import LIGHT_CHANNELS, PEN_CHANNELS
from workstation.plotbuffer import PlotBuffers
from workstation.store.records import SessionRecord, Treatment
from workstation.ui.course_view import CourseView
from workstation.ui.plots import AXIS_TEXT, PLOTS_BY_DEVICE, LivePlots, plotted_channels

RATE_HZ = 200.0


def block(channels: tuple, t0_s: float, t1_s: float, **values: float) -> np.ndarray:
    names = [c.name for c in channels]
    dtype = [(n, np.float64 if n == "t_host_s" else np.int64 if n in ("t_device_us", "seq") else np.float32)
             for n in names]
    t = np.arange(t0_s, t1_s, 1 / RATE_HZ)
    out = np.zeros(len(t), dtype)
    out["t_host_s"] = 1000.0 + t
    out["t_device_us"] = (t * 1e6).astype(np.int64)
    for name, v in values.items():
        out[name] = v
    return out


def test_legends_are_above_the_data_and_axes_are_dark(qtbot) -> None:
    plots = LivePlots(PlotBuffers(plotted_channels(), capacity_s=60, rate_hz=RATE_HZ))
    qtbot.addWidget(plots)
    for device, panel in plots.panels.items():
        for plot, spec in zip(panel.plots, PLOTS_BY_DEVICE[device], strict=True):
            assert plot.legend is None  # no legend box inside the view box
            assert all(c.label in plot.titleLabel.text for c in spec.curves)
            assert plot.getAxis("left").textPen().color().name() == AXIS_TEXT
    assert "skin_contact" in plots.panels["light"].curves


def test_a_silent_device_shows_a_gap_on_the_shared_time_axis(qtbot) -> None:
    buffers = PlotBuffers(plotted_channels(), capacity_s=60, rate_hz=RATE_HZ)
    plots = LivePlots(buffers)
    qtbot.addWidget(plots)
    plots.resize(1200, 800)
    plots.show()
    qtbot.waitExposed(plots)
    plots.set_window("10 s")
    buffers.clear(1000.0)
    buffers.on_block("light", block(LIGHT_CHANNELS, 0.0, 9.0, irradiance_mw_cm2=100.0, skin_contact=1))
    buffers.on_block("pen", block(PEN_CHANNELS, 0.0, 3.0, depth_mm=1.0))
    plots.refresh()
    light_x = plots.panels["light"].plots[0].getViewBox().viewRange()[0]
    pen_x = plots.panels["pen"].plots[0].getViewBox().viewRange()[0]
    assert abs(light_x[1] - pen_x[1]) < 0.05 and light_x[1] > 8.9  # the pen's axis follows the light's
    t, _y = plots.panels["pen"].curves["depth_mm"].getData()
    assert t.max() < 3.0  # the pen's curve ends where it went silent
    buffers.on_block("pen", block(PEN_CHANNELS, 6.0, 9.5, depth_mm=float("nan")))
    buffers.on_block("pen", block(PEN_CHANNELS, 9.5, 9.9, depth_mm=1.2))
    buffers.on_block("light", block(LIGHT_CHANNELS, 9.0, 10.0, irradiance_mw_cm2=100.0))
    plots.refresh()
    t, y = plots.panels["pen"].curves["depth_mm"].getData()
    gap = np.flatnonzero(~np.isfinite(y))
    assert len(gap) and (t[gap] < 6.0).any()  # a break between 3 s and 6 s
    assert np.isfinite(y[-1]) and t[-1] > 9.8  # it resumed on the same axis
    lo, hi = plots.panels["pen"].plots[0].getViewBox().viewRange()[1]
    assert np.isfinite(lo) and np.isfinite(hi)


def test_a_course_chart_with_one_point_starts_at_zero(qtbot) -> None:
    from workstation.store.records import Area

    view = CourseView()
    qtbot.addWidget(view)
    area = Area(1, 1, "left cheek", "face", "hypopigmented_scar", 4.0, "III")
    rec = SessionRecord(1, 1, dt.date(2026, 1, 1), "UVB-308", (Treatment(1, "light", dose_mj_cm2=100.0),))
    view.show_course([rec], [area])
    lo, hi = view.dose.getViewBox().viewRange()[1]
    assert lo == 0 and 110 <= hi <= 130
    assert "left cheek" in view.dose.titleLabel.text
    assert isinstance(view.dose, pg.PlotItem)


def test_a_course_shows_the_charts_of_what_it_delivered_only(qtbot) -> None:
    """Fresh tester of issue 12: a light-only course's summary drew an empty needling-depth chart (and a PIH
    needling-only course an empty dose chart): an empty chart reads as 'nothing delivered'."""
    from workstation.store.records import Area

    view = CourseView()
    qtbot.addWidget(view)
    area = Area(1, 1, "left cheek", "face", "hypopigmented_scar", 4.0, "III")
    light = SessionRecord(1, 1, dt.date(2026, 1, 1), "UVB-308", (Treatment(1, "light", dose_mj_cm2=100.0),))
    needling = SessionRecord(2, 1, dt.date(2026, 1, 29), "", (Treatment(1, "needling", depth_mm=1.0),))

    def laid_out() -> list:
        return [view.ci.getItem(row, 0) for row in range(4)]

    view.show_course([light], [area])
    assert laid_out() == [view.dose, view.response, view.repigmentation, None]
    assert "left cheek" in view.dose.titleLabel.text
    view.show_course([needling], [area])
    assert laid_out() == [view.depth, view.response, view.repigmentation, None]
    assert "left cheek" in view.depth.titleLabel.text and "left cheek" not in view.dose.titleLabel.text
    view.show_course([light, needling], [area])  # a combined course: both, dose first
    assert laid_out() == [view.dose, view.depth, view.response, view.repigmentation]
    view.show_course([], [area])  # nothing delivered yet: both, empty, say so by their axes
    assert laid_out() == [view.dose, view.depth, view.response, view.repigmentation]


def test_a_light_only_session_plots_the_light_only(qtbot) -> None:
    plots = LivePlots(PlotBuffers(plotted_channels(), capacity_s=60, rate_hz=RATE_HZ))
    qtbot.addWidget(plots)
    plots.show_devices(["light"])
    assert plots.shown() == ["light"]
    plots.show_devices([])
    assert plots.shown() == ["light", "pen"]
