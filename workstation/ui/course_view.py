"""The course view: for each area, the light dose and needling depth delivered and the response, session by session."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PyQt6.QtWidgets import QWidget

from workstation.store.records import REPIGMENTATION_BANDS
from workstation.ui.plots import AXIS_TEXT

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


class CourseView(pg.GraphicsLayoutWidget):
    """Charts over the session number, one colour per area: light dose (mJ/cm²) and needling depth (mm), each only
    when the course delivered it (both when nothing was), and the response: erythema grade (0–4) and repigmentation
    band (0 %, 1–5 %, … 76–100 %, drawn as its band index with the band's name on the axis)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.dose = self.addPlot(row=0, col=0, )
        self.depth = self.addPlot(row=1, col=0, )
        self.response = self.addPlot(row=2, col=0, )
        self.repigmentation = self.addPlot(row=3, col=0, )
        for plot, label, unit in ((self.dose, "dose", "mJ/cm²"), (self.depth, "depth", "mm"),
                                  (self.response, "grade", "0–4"), (self.repigmentation, "band", "%")):
            plot.setLabel("left", f"{label} ({unit})", **{"color": AXIS_TEXT, "font-size": "9pt"})
            for name in ("left", "bottom"):
                plot.getAxis(name).setTextPen(AXIS_TEXT)
                plot.getAxis(name).setPen("#606060")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.setMenuEnabled(False)
        self.repigmentation.setLabel("bottom", "session", **{"color": AXIS_TEXT, "font-size": "9pt"})
        self.response.setYRange(-0.2, 4.2)
        self.repigmentation.setYRange(-0.2, len(REPIGMENTATION_BANDS) - 0.8)
        self.repigmentation.getAxis("left").setTicks([list(enumerate(REPIGMENTATION_BANDS))])
        self.titles = {"dose": "light dose per area", "depth": "needling depth per area",
                       "response": "erythema grade (response)", "repigmentation": "repigmentation (response)"}
        self.charts = {"dose": self.dose, "depth": self.depth, "response": self.response,
                       "repigmentation": self.repigmentation}
        for key, plot in self.charts.items():
            plot.setTitle(self.titles[key], color=AXIS_TEXT)
        self.shown = list(self.charts)  # the charts laid out, top to bottom
        self.legend_text = ""  # the areas' colours, shown in the first chart's title (outside the data)
        self.series: dict[str, dict[str, list[tuple[int, float]]]] = {}

    def _show_charts(self, keys: list[str]) -> None:
        """Lay out the charts of `keys` only, top to bottom in their order (a light-only course has no depth chart,
        a needling-only one no dose chart: an empty chart would read as 'nothing delivered')."""
        if keys == self.shown:
            return
        for key in self.shown:
            self.ci.removeItem(self.charts[key])
        for row, key in enumerate(keys):
            self.ci.addItem(self.charts[key], row=row, col=0)
        self.shown = keys

    def show_course(self, history: Sequence, areas: Sequence) -> None:
        """`history`: the store's SessionRecords in order; `areas`: the patient's Areas (for their labels)."""
        labels = {a.id: a.label for a in areas}
        series: dict[str, dict[str, list[tuple[int, float]]]] = {"dose": {}, "depth": {}, "response": {},
                                                                  "repigmentation": {}}
        for n, rec in enumerate(history, start=1):
            for t in rec.treatments:
                label = labels.get(t.area_id, str(t.area_id))
                if t.modality == "light" and t.dose_mj_cm2 is not None:
                    series["dose"].setdefault(label, []).append((n, float(t.dose_mj_cm2)))
                elif t.modality == "needling" and t.depth_mm is not None:
                    series["depth"].setdefault(label, []).append((n, float(t.depth_mm)))
            for r in rec.responses:
                label = labels.get(r.area_id, str(r.area_id))
                if r.erythema_grade is not None:
                    series["response"].setdefault(label, []).append((n, float(r.erythema_grade)))
                if r.repigmentation_band in REPIGMENTATION_BANDS:
                    band = float(REPIGMENTATION_BANDS.index(r.repigmentation_band))
                    series["repigmentation"].setdefault(label, []).append((n, band))
        self.series = series
        all_labels = sorted({lab for s in series.values() for lab in s})
        colors = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(all_labels)}
        delivered = [key for key in ("dose", "depth") if series[key]]
        self._show_charts([*(delivered or ["dose", "depth"]), "response", "repigmentation"])
        charts = list(self.charts.items())  # all drawn (a hidden one holds nothing stale), the shown ones laid out
        for key, plot in charts:
            plot.clear()
            for label, points in series[key].items():
                xs, ys = zip(*points, strict=True)
                plot.plot(list(xs), list(ys), pen=pg.mkPen(colors[label], width=2), symbol="o", symbolSize=8,
                          symbolBrush=colors[label])
            if key in ("dose", "depth"):
                _sensible_y(plot, [y for pts in series[key].values() for _x, y in pts])
        self.legend_text = "&nbsp;&nbsp;".join(f"<span style='color:{colors[lab]}'>●</span>&nbsp;{lab}"
                                               for lab in all_labels)
        for key, plot in charts:  # the legend in the first chart's title
            legend = f"&nbsp;&nbsp;&nbsp;{self.legend_text}" if key == self.shown[0] else ""
            plot.setTitle(self.titles[key] + legend, color=AXIS_TEXT)
        ticks = [[(n, str(n)) for n in range(1, max(1, len(history)) + 1)]]
        for _key, plot in charts:
            plot.setXRange(0.5, max(1, len(history)) + 0.5, padding=0)
            plot.getAxis("bottom").setTicks(ticks)


def _sensible_y(plot: pg.PlotItem, ys: list[float]) -> None:
    """A range around the values that starts at 0 for these non-negative quantities, so one point or equal points
    show as what they are (300 mJ/cm² on 0–360, not on 299.6–300.4)."""
    finite = [y for y in ys if y == y and abs(y) != float("inf")]
    if not finite:
        plot.setYRange(0, 1, padding=0)
        return
    top = max(finite)
    plot.setYRange(0, top * 1.2 if top > 0 else 1.0, padding=0)
