"""Live plot panels: one column of linked plots per device, refreshed by a GUI-thread timer from `PlotBuffers`.

Nothing here receives samples: the reader threads append to the buffers, and a `QTimer` (40 Hz by default) pulls at
most ≈ 2 points per pixel of plot width per curve (the buffers' min/max envelope), so the cost of a frame does not
grow with the window length (10 s to 10 min) or the sample rate.

Both devices share one time axis (the latest sample of either device ends it), so a device that stops sending
(unplugged) shows its curves ending with a gap while the other's go on, and resumes on the same axis after a gap.
Each plot's legend is its title line, above the data, so it never hides the newest samples. Non-finite samples are
drawn as gaps (`connect="finite"`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QPaintEvent
from PyQt6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from workstation.plotbuffer import PlotBuffers, finite_extent

WINDOW_CHOICES_S = {"10 s": 10.0, "1 min": 60.0, "10 min": 600.0, "1 h": 3600.0}  # offered if the buffers hold it
DEFAULT_REFRESH_HZ = 40.0
MIN_POINTS = 200
GAP_S = 0.25  # samples further apart than this (and than 3 typical steps) are not joined: the device was silent
AXIS_TEXT = "#202020"  # axis text dark enough to read at a glance (WCAG AA on white)


@dataclass(frozen=True, slots=True)
class CurveSpec:
    channel: str  # a field of the device's block dtype
    label: str
    color: str


@dataclass(frozen=True, slots=True)
class PlotSpec:
    title: str
    unit: str
    curves: tuple[CurveSpec, ...]
    min_span: float = 1.0  # the smallest Y span shown when following the data, in the plot's unit
    y_floor: float | None = 0.0  # the quantity cannot go below this: the range starts just under it when near
    y_range: tuple[float, float] | None = None  # fixed range (booleans); None: follow the data


LIGHT_PLOTS = (
    PlotSpec("irradiance", "mW/cm²", (CurveSpec("irradiance_mw_cm2", "irradiance", "#e8a33d"),), min_span=10.0),
    PlotSpec(
        "dose",
        "mJ/cm²",
        (
            CurveSpec("dose_mj_cm2", "delivered", "#c678dd"),
            CurveSpec("target_dose_mj_cm2", "target", "#888888"),
        ),
        min_span=100.0,
    ),
    PlotSpec("lamp temperature", "°C", (CurveSpec("lamp_temp_c", "lamp", "#e06c75"),), y_floor=None),
    PlotSpec("skin contact", "on/off", (CurveSpec("skin_contact", "contact", "#56b6c2"),), y_range=(-0.1, 1.1)),
)
PEN_PLOTS = (
    PlotSpec(
        "depth",
        "mm",
        (CurveSpec("depth_mm", "measured", "#61afef"), CurveSpec("depth_set_mm", "set", "#888888")),
        min_span=0.5,
    ),
    PlotSpec("stroke rate", "Hz", (CurveSpec("stroke_rate_hz", "stroke rate", "#98c379"),), min_span=10.0),
    PlotSpec("motor current", "mA", (CurveSpec("motor_current_ma", "current", "#d19a66"),), min_span=20.0),
    PlotSpec("skin contact", "on/off", (CurveSpec("skin_contact", "contact", "#56b6c2"),), y_range=(-0.1, 1.1)),
)
PLOTS_BY_DEVICE = {"light": LIGHT_PLOTS, "pen": PEN_PLOTS}


def plotted_channels(plots_by_device: dict[str, tuple[PlotSpec, ...]] = PLOTS_BY_DEVICE) -> dict[str, list[str]]:
    """The channels `PlotBuffers` must keep for these panels."""
    return {dev: [c.channel for spec in specs for c in spec.curves] for dev, specs in plots_by_device.items()}


class DevicePlotPanel(pg.GraphicsLayoutWidget):
    """A device's plots stacked in one view, X axes linked, units on the Y axes, time on the bottom axis."""

    def __init__(self, device: str, specs: tuple[PlotSpec, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.device = device
        self.plots: list[pg.PlotItem] = []
        self.paints = 0  # frames actually painted (for the benchmark)
        self.drawn_total = 0  # the device's samples_total when its curves were last set (what the next paint shows)
        self.on_painted: Callable[[DevicePlotPanel], None] | None = None  # the benchmark's device→pixel probe
        self.curves: dict[str, pg.PlotDataItem] = {}
        # (session s it starts, mJ/cm² given in the step before it, the step's planned mJ/cm²) per light exposure
        self.step_doses: list[tuple[float, float, float]] = []
        self._auto_y: list[tuple[pg.PlotItem, tuple[str, ...], PlotSpec]] = []  # Y range follows the data
        self.setBackground("w")
        for row, spec in enumerate(specs):
            plot = self.addPlot(row=row, col=0)
            plot.setMenuEnabled(False)
            plot.showGrid(x=False, y=False)  # grids cost as much as the curves to paint at 30 frames/s
            plot.setTitle(legend_html(spec), size="9pt", justify="left")  # the legend, outside the data area
            plot.setLabel("left", spec.unit, **{"color": AXIS_TEXT, "font-size": "9pt"})
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setTextPen(AXIS_TEXT)
                axis.setPen("#606060")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(70)
            plot.setMouseEnabled(x=False, y=False)
            plot.enableAutoRange(x=False, y=False)  # ranges are set in refresh(), not while painting
            plot.setYRange(*(spec.y_range or (0.0, 1.0)), padding=0)
            if spec.y_range is None:
                self._auto_y.append((plot, tuple(c.channel for c in spec.curves), spec))
            for c in spec.curves:
                self.curves[c.channel] = plot.plot(pen=pg.mkPen(c.color, width=1), name=c.label, antialias=False)
            if self.plots:
                plot.setXLink(self.plots[0])
            self.plots.append(plot)
        for plot in self.plots[:-1]:  # one time axis, at the bottom (an axis costs as much to paint as a curve)
            plot.hideAxis("bottom")
        self.plots[-1].setLabel("bottom", "time since session start (s)", **{"color": AXIS_TEXT, "font-size": "9pt"})
        self.plots[-1].getAxis("bottom").enableAutoSIPrefix(False)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        self.paints += 1
        if self.on_painted is not None:
            self.on_painted(self)

    def points_budget(self) -> int:
        """At most 2 points per pixel of plot width: the min and the max of the samples under that pixel."""
        return max(MIN_POINTS, 2 * int(self.plots[0].getViewBox().width()))

    def refresh(self, buffers: PlotBuffers, window_s: float, decimate: bool, t_end_s: float | None = None) -> None:
        """Redraw from the buffers; `t_end_s` (session s) ends the shared time axis (default: this device's last)."""
        max_points = self.points_budget() if decimate else None
        stats = buffers.stats(self.device)
        self.drawn_total = stats.samples_total
        t_last_s = stats.t_last_s if t_end_s is None else t_end_s
        y_extent: dict[str, tuple[float, float]] = {}
        for channel, curve in self.curves.items():
            t, y = with_gaps(*buffers.view(self.device, channel, window_s, max_points))
            if self.step_doses and channel in ("dose_mj_cm2", "target_dose_mj_cm2"):
                y = step_totals(channel, t, y, self.step_doses)
            curve.setData(t, y, connect="finite")  # NaN: a non-finite sample or a silent device, drawn as a gap
            if (extent := finite_extent(y)) is not None:
                y_extent[channel] = extent
        for plot, channels, spec in self._auto_y:
            extents = [y_extent[c] for c in channels if c in y_extent]
            if extents:
                _follow_y(plot, min(e[0] for e in extents), max(e[1] for e in extents), spec)
        if t_last_s == t_last_s:  # not nan: something arrived; until a window has passed, it fills from the left
            x_end_s = max(window_s, t_last_s)
            for plot in self.plots:  # each one directly: via the link, followers would change after this paint
                plot.setXRange(x_end_s - window_s, x_end_s, padding=0)
        for plot in self.plots:  # apply the new ranges now; left to the paint, they would cost a second paint
            plot.getViewBox().prepareForPaint()


def step_totals(channel: str, t: np.ndarray, y: np.ndarray,
                step_doses: list[tuple[float, float, float]]) -> np.ndarray:
    """The light's dose against its step's plan: from each exposure's start (session s), the delivered dose (mJ/cm²,
    which the device restarts at 0 on a resumed exposure) plus what the step gave before it, and the target as the
    step's planned total (the device is told only the remainder). Samples before the first exposure are unchanged."""
    starts = np.array([s[0] for s in step_doses])
    seg = np.searchsorted(starts, t, side="right") - 1
    inside = seg >= 0
    out = np.array(y, dtype=np.float64, copy=True)
    col = 1 if channel == "dose_mj_cm2" else 2
    values = np.array([s[col] for s in step_doses])
    if channel == "dose_mj_cm2":
        out[inside] += values[seg[inside]]
    else:
        out[inside] = np.where(np.isnan(out[inside]), np.nan, values[seg[inside]])
    return out


def legend_html(spec: PlotSpec) -> str:
    """The plot's title line: its name, then a coloured key per curve (the legend, above the data area)."""
    keys = "&nbsp;&nbsp;".join(f"<span style='color:{c.color}'>━━</span>&nbsp;{c.label}" for c in spec.curves)
    return f"<span style='color:{AXIS_TEXT}'><b>{spec.title}</b>&nbsp;&nbsp;{keys}</span>"


def with_gaps(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN where consecutive samples are further apart than GAP_S and 3 typical steps (a silent device),
    so the curve shows a gap instead of a straight line across it."""
    if len(t) < 3:
        return t, y
    dt = np.diff(t)
    typical = float(np.median(dt[dt > 0])) if (dt > 0).any() else 0.0
    cut = np.flatnonzero(dt > max(GAP_S, 3 * typical)) + 1
    if not len(cut):
        return t, y
    return np.insert(t, cut, t[cut - 1]), np.insert(y.astype(np.float64), cut, np.nan)


def _follow_y(plot: pg.PlotItem, lo: float, hi: float, spec: PlotSpec) -> None:
    """Fit the Y range to [lo, hi] with a margin (and at least the spec's minimum span), only when the data leaves
    it or fills less than half of it, so noise does not re-lay the axis every frame."""
    cur_lo, cur_hi = plot.getViewBox().viewRange()[1]
    cur_span = cur_hi - cur_lo
    fits = lo >= cur_lo and hi <= cur_hi and cur_span >= 0.999 * spec.min_span
    if fits and max(hi - lo, spec.min_span) >= 0.5 * cur_span:
        return
    span = max(1.2 * (hi - lo), spec.min_span)
    bottom = 0.5 * (lo + hi) - span / 2
    if spec.y_floor is not None and bottom < spec.y_floor <= lo:
        bottom = spec.y_floor - 0.03 * span
    plot.setYRange(bottom, bottom + span, padding=0)


class LivePlots(QWidget):
    """Both devices' panels side by side, the window-length choice, the decimation toggle and the refresh timer."""

    def __init__(
        self,
        buffers: PlotBuffers,
        plots_by_device: dict[str, tuple[PlotSpec, ...]] = PLOTS_BY_DEVICE,
        refresh_hz: float = DEFAULT_REFRESH_HZ,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.buffers = buffers
        self.window_s = WINDOW_CHOICES_S["1 min"]
        self.frames_drawn = 0
        self.last_frame_ms = 0.0
        self._last_totals: tuple[int, ...] | None = None

        self.window_choice = QComboBox()
        held_s = buffers.capacity_samples / buffers.rate_hz
        self.window_choice.addItems([k for k, v in WINDOW_CHOICES_S.items() if v <= held_s + 1e-6])
        self.window_choice.setCurrentText("1 min")
        self.window_choice.currentTextChanged.connect(self._window_changed)
        self.decimate_toggle = QCheckBox("min/max decimation")
        self.decimate_toggle.setToolTip("Off: draw every sample (slow for long windows; for inspection only)")
        self.decimate_toggle.setChecked(True)
        self.decimate_toggle.toggled.connect(self._force_refresh)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("window"))
        controls.addWidget(self.window_choice)
        controls.addWidget(self.decimate_toggle)
        controls.addStretch(1)
        self.panels = {dev: DevicePlotPanel(dev, specs) for dev, specs in plots_by_device.items()}
        self.device_boxes: dict[str, QVBoxLayout] = {}
        row = QHBoxLayout()
        for dev, panel in self.panels.items():
            box = QVBoxLayout()
            box.addWidget(panel, 1)
            self.device_boxes[dev] = box
            row.addLayout(box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(row, 1)

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, round(1000.0 / refresh_hz)))
        self.timer.timeout.connect(self.refresh)

    def show_devices(self, devices: list[str]) -> None:
        """Show the panels of `devices` only (a light-only session has no depth to plot): each other panel, and
        whatever its column holds, is hidden and not drawn. An empty list shows every panel."""
        for dev, box in self.device_boxes.items():
            visible = not devices or dev in devices
            for i in range(box.count()):
                widget = box.itemAt(i).widget()
                if widget is not None:
                    widget.setVisible(visible)
        self._force_refresh()

    def shown(self) -> list[str]:
        """The devices whose panels are shown."""
        return [dev for dev, panel in self.panels.items() if not panel.isHidden()]

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def set_window(self, label: str) -> None:
        """Select a window length by its label in WINDOW_CHOICES_S ("10 s", "1 min", "10 min")."""
        self.window_choice.setCurrentText(label)

    def _window_changed(self, label: str) -> None:
        self.window_s = WINDOW_CHOICES_S[label]
        self._force_refresh()

    def _force_refresh(self) -> None:
        self._last_totals = None
        self.refresh()

    def refresh(self) -> None:
        """Pull the current window of every curve from the buffers (skipped when no sample arrived since)."""
        totals = tuple(self.buffers.stats(dev).samples_total for dev in self.panels)
        if totals == self._last_totals:
            return
        t0 = time.perf_counter()
        lasts = [t for dev in self.panels if (t := self.buffers.stats(dev).t_last_s) == t]
        t_end = max(lasts) if lasts else None  # one time axis for both devices
        for panel in self.panels.values():
            if not panel.isHidden():
                panel.refresh(self.buffers, self.window_s, self.decimate_toggle.isChecked(), t_end)
        self._last_totals = totals
        self.frames_drawn += 1
        self.last_frame_ms = (time.perf_counter() - t0) * 1e3
