"""The session report as a PDF, drawn from the recording with Qt's own writer (QPdfWriter) and QPainter: the text,
then one figure per step over that step's own time span (irradiance, and dose against the target, for the light;
depth against the set depth, and stroke rate, for the pen), then the operator's sign-off. Vector drawing, no widget
and no screen grab: it runs on a worker thread or without a window (`main.py report`).
"""

from __future__ import annotations

import errno
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QBuffer, QIODevice, QMarginsF, QPointF, QRectF, Qt, qInstallMessageHandler
from PyQt6.QtGui import QColor, QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen, QPolygonF

from workstation.errors import UserError
from workstation.ui.report_data import (
    LIGHT_SERIES,
    MARGIN_S,
    PEN_SERIES,
    WARNING_PREFIX,
    ReportData,
    StepSpan,
)

RESOLUTION_DPI = 150
PANEL_H = 170.0
COLORS = {"irradiance_mw_cm2": "#e69f00", "dose_mj_cm2": "#9b3fb5", "target_dose_mj_cm2": "#555555",
          "depth_mm": "#0072b2", "depth_set_mm": "#555555", "stroke_rate_hz": "#009e73"}


@dataclass(frozen=True)
class DrawnPlot:
    """A figure as drawn: the step it shows and the time span of its axis (session s)."""

    step: int
    t_from_s: float
    t_to_s: float
    page: int


def write_session_report(data: ReportData, path: Path | str) -> list[DrawnPlot]:
    """Write the report of `data` to an A4 PDF at `path`; return the figures drawn. UserError, one sentence for the
    command line and the windows (read-only folder, no rights, disk full), if it cannot write. Qt draws the PDF in memory and Python writes the
    file: a path Qt cannot name (bytes that are not UTF-8) works, and a failure is Python's, in words, not Qt's
    "QPainter::begin(): Returned false" on the terminal."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _not_written(path, exc) from exc
    pdf = QBuffer()
    pdf.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(pdf)
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    title = ("Cicatrix training session report — not a clinical record" if data.training
             else "Cicatrix session report")
    writer.setTitle(f"{title} — {data.pseudonym}")
    writer.setCreator("Cicatrix workstation")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(errno.EIO, "Qt's PDF writer could not start")
    drawn: list[DrawnPlot] = []
    try:
        page = writer.pageLayout().paintRectPixels(RESOLUTION_DPI)
        doc = _Doc(painter, writer, float(page.width()), float(page.height()))
        doc.text(title, 15, bold=True)
        for line in data.lines():
            if line.startswith("## "):
                doc.y += 6
                doc.text(line[3:], 11, bold=True)
            elif line.startswith(WARNING_PREFIX):
                doc.text(line, 9, bold=True, color="#b00000")
            else:
                doc.text(line, 8)
        for step in data.steps:
            if len(step.t_s):
                drawn.append(doc.figure(step))
        doc.sign_off(data.operator)
    finally:
        painter.end()
    try:
        with open(path, "wb") as f:
            f.write(pdf.data().data())
    except OSError as exc:
        try:
            path.unlink(missing_ok=True)  # no half-written report left behind (a full disk)
        except OSError:
            pass
        raise _not_written(path, exc) from exc
    return drawn


def report_failure_words(exc: Exception) -> str:
    """What a window says when its report could not be made: a UserError's own sentence (the file could not be
    written, the recording could not be read), else the unexpected error's short line, after what failed."""
    from workstation.ui.messages import user_text

    return user_text(exc) if isinstance(exc, UserError) else f"The report could not be written: {user_text(exc)}"


def _not_written(path: Path, exc: OSError) -> UserError:
    """The one sentence for a report the system would not let be written (the command line and both windows)."""
    why = {errno.EROFS: "its folder is on a read-only disk", errno.ENOSPC: "the disk is full",
           errno.EACCES: "this account may not write in its folder", errno.EPERM: "this account may not write there",
           errno.ENOENT: "its folder does not exist"}.get(exc.errno or 0, (exc.strerror or "the system refused").lower())
    logging.getLogger(__name__).info("writing the report %s: %s", path, exc)
    todo = "free some space on the disk, or choose" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose"
    return UserError(f"The report could not be written to {path}: {why}. {todo.capitalize()} another folder (the "
                     "command line: report --out).")


def report_font(size: int, bold: bool = False) -> QFont:
    """The report's font, without ligatures: a SHA-256 or a recording's name printed with "ff" or "fi" joined into one
    glyph is copied out of the PDF as another string (a second fresh tester of issue 12: pdftotext read "7ﬀ3")."""
    font = QFont("Sans Serif", size)
    font.setBold(bold)
    font.setStyleStrategy(QFont.StyleStrategy.PreferNoShaping)
    return font


def log_qt_messages() -> None:
    """Send Qt's own messages (a font note, a painter that could not start) to the log, never raw to the terminal:
    for a command that draws without a window (`main.py report`); what went wrong is said once, in words."""
    qInstallMessageHandler(_qt_to_log)


def _qt_to_log(kind: object, context: object, message: str | None) -> None:
    logging.getLogger("workstation.qt").info("Qt: %s", message)


class _Doc:
    def __init__(self, painter: QPainter, writer: QPdfWriter, width: float, height: float) -> None:
        self.p, self.writer, self.width, self.height = painter, writer, width, height
        self.y = 0.0
        self.page = 1

    def ensure(self, space: float) -> None:
        if self.y + space > self.height and self.y > 0:
            self.writer.newPage()
            self.page += 1
            self.y = 0.0

    def text(self, s: str, size: int, bold: bool = False, color: str = "#000000") -> None:
        s = re.sub(r"`([^`]*)`", r"“\1”", s)  # no backticks on paper
        self.p.setFont(report_font(size, bold))
        self.p.setPen(QColor(color))
        flags = int(Qt.TextFlag.TextWordWrap)
        rect = self.p.boundingRect(QRectF(0, 0, self.width, self.height), flags, s)
        self.ensure(rect.height())
        self.p.drawText(QRectF(0, self.y, self.width, rect.height()), flags, s)
        self.y += rect.height() + size * 0.4

    def figure(self, step: StepSpan) -> DrawnPlot:
        light = step.modality == "light"
        specs = LIGHT_SERIES if light else PEN_SERIES
        panels = ([specs[0:1], specs[1:3]] if light else [specs[0:2], specs[2:3]])
        self.ensure(40 + len(panels) * (PANEL_H + 40))
        page = self.page
        self.text(f"Step {step.index} — {step.describe()}", 9, bold=True)
        t_from, t_to = step.t_start_s, step.t_end_s
        for group in panels:
            series = [(step.series[c], COLORS[c], label) for c, label, _u in group if c in step.series]
            self._legend(series, group[0][2])
            rect = QRectF(70, self.y, self.width - 80, PANEL_H)
            self._panel(rect, step.t_s, series, t_from - MARGIN_S, t_to + MARGIN_S, (t_from, t_to))
            self.y += PANEL_H + 26
        self.text(f"time since session start (s): step from {t_from:.1f} s to {t_to:.1f} s (shaded), "
                  f"axis {max(0.0, t_from - MARGIN_S):.1f}–{t_to + MARGIN_S:.1f} s", 7, color="#333333")
        self.y += 8
        return DrawnPlot(step.index, t_from, t_to, page)

    def _legend(self, series: list, unit: str) -> None:
        self.p.setFont(report_font(7))
        x = 70.0
        for _y, color, label in series:
            self.p.setPen(QPen(QColor(color), 3))
            self.p.drawLine(QPointF(x, self.y + 8), QPointF(x + 24, self.y + 8))
            self.p.setPen(QColor("#000000"))
            self.p.drawText(QPointF(x + 30, self.y + 12), f"{label} ({unit})")
            x += 40 + self.p.fontMetrics().horizontalAdvance(f"{label} ({unit})")
        self.y += 20

    def _panel(self, rect: QRectF, t: np.ndarray, series: list, t_lo: float, t_hi: float,
               shade: tuple[float, float]) -> None:
        p = self.p
        t_lo = max(0.0, t_lo)
        values = np.concatenate([y[np.isfinite(y)] for y, _c, _l in series]) if series else np.empty(0)
        y_hi = float(values.max()) if len(values) else 1.0
        y_lo = min(0.0, float(values.min())) if len(values) else 0.0
        y_hi = y_hi * 1.1 if y_hi > 0 else 1.0
        y_lo, y_hi, y_ticks = nice_ticks(y_lo, y_hi)  # round numbers on the axis (never 0.8332)
        _, _, t_ticks = nice_ticks(t_lo, t_hi, extend=False)

        def px(tt: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (rect.left() + (tt - t_lo) / max(t_hi - t_lo, 1e-9) * rect.width(),
                    rect.bottom() - (yy - y_lo) / max(y_hi - y_lo, 1e-9) * rect.height())

        sx0, _ = px(np.array([shade[0]]), np.zeros(1))
        sx1, _ = px(np.array([shade[1]]), np.zeros(1))
        p.fillRect(QRectF(float(sx0[0]), rect.top(), float(sx1[0] - sx0[0]), rect.height()), QColor("#eef3fb"))
        p.setPen(QPen(QColor("#404040"), 1))
        p.drawRect(rect)
        p.setFont(report_font(6))
        for yv in y_ticks:
            _, yy = px(np.zeros(1), np.array([yv]))
            p.drawLine(QPointF(rect.left() - 4, float(yy[0])), QPointF(rect.left(), float(yy[0])))
            p.drawText(QRectF(0, float(yy[0]) - 8, rect.left() - 6, 16),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), tick_label(yv))
        for tv in t_ticks:
            xx, _ = px(np.array([tv]), np.zeros(1))
            p.drawLine(QPointF(float(xx[0]), rect.bottom()), QPointF(float(xx[0]), rect.bottom() + 4))
            p.drawText(QRectF(float(xx[0]) - 30, rect.bottom() + 4, 60, 14), int(Qt.AlignmentFlag.AlignHCenter),
                       tick_label(tv))
        for y, color, _label in series:
            tt, yy = _envelope(t, y, int(rect.width()))
            xs, ys = px(tt, yy)
            p.setPen(QPen(QColor(color), 1.5))
            finite = np.isfinite(ys)
            for run in np.split(np.arange(len(xs)), np.flatnonzero(~finite)):
                run = run[finite[run]]
                if len(run) > 1:
                    p.drawPolyline(QPolygonF([QPointF(float(a), float(b)) for a, b in zip(xs[run], ys[run],
                                                                                           strict=True)]))

    def sign_off(self, operator: str) -> None:
        self.ensure(120)
        self.y += 20
        self.text("Signed off", 11, bold=True)
        self.text(f"Operator: {operator}", 9)
        self.p.setPen(QPen(QColor("#000000"), 1))
        for label in ("Signature", "Date"):
            self.y += 24
            self.p.drawText(QPointF(0, self.y), f"{label}:")
            self.p.drawLine(QPointF(110, self.y + 2), QPointF(min(self.width, 600), self.y + 2))
        self.y += 16


def _envelope(t: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 points per column (the min and the max), so a long step stays a small file."""
    n = len(t)
    if n <= 2 * columns or columns < 2:
        return t, y
    edges = np.linspace(0, n, columns + 1).astype(int)
    tt = np.repeat(t[edges[:-1]], 2)
    yy = np.empty(2 * columns)
    with np.errstate(all="ignore"):
        yy[0::2] = np.fmin.reduceat(y, edges[:-1])
        yy[1::2] = np.fmax.reduceat(y, edges[:-1])
    return tt, yy


def nice_ticks(lo: float, hi: float, n: int = 4, extend: bool = True) -> tuple[float, float, list[float]]:
    """Axis ticks at round steps (1, 2, 2.5 or 5 × 10^k), about `n` intervals: (lo, hi, ticks). With `extend`, the
    range grows to the ticks around it; without, the ticks are those inside [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0 if math.isfinite(lo) else 1.0
        lo = lo if math.isfinite(lo) else 0.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    if extend:
        lo, hi = round(first * step, 10), round(last * step, 10)
    else:
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    ticks = [round(k * step, 10) for k in range(first, last + 1)]
    return lo, hi, ticks


def tick_label(v: float) -> str:
    """A tick value as written on an axis: 0, 2.5, 100 (no float noise)."""
    return f"{round(v, 6):g}"
