"""The body map on the patient page: front and back outlines with each treatment area drawn on its body region,
coloured by lesion type (colour and a letter: colour-blind safe), PIH areas ringed and marked; a click on an area
selects it (`area_clicked(area_id)`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from workstation.protocols.model import UV_FORBIDDEN_LESIONS
from workstation.ui.wording import LESION_COLORS, lesion_name, region_name

# Where a region sits, as (view, x0, y0, x1, y1) in a 1 × 2 box per view (x 0–1 across, y 0–2 down); view 0 front,
# 1 back. Several areas on one region are spread in a grid inside its box (never onto the arms beside it).
REGION_BOXES = {
    "forehead": (0, 0.42, 0.06, 0.58, 0.14), "periorbital": (0, 0.40, 0.14, 0.60, 0.19),
    "face": (0, 0.42, 0.18, 0.58, 0.28), "neck": (0, 0.45, 0.30, 0.55, 0.36),
    "breast_chest": (0, 0.32, 0.40, 0.68, 0.58), "abdomen": (0, 0.32, 0.62, 0.68, 0.94),
    "upper_arm": (0, 0.14, 0.40, 0.26, 0.62), "forearm": (0, 0.74, 0.62, 0.86, 0.86),
    "hand": (0, 0.74, 0.88, 0.86, 0.98), "thighs": (0, 0.29, 1.02, 0.71, 1.40),
    "bony": (0, 0.29, 1.50, 0.71, 1.62), "lower_leg": (0, 0.29, 1.62, 0.71, 1.80),
    "back": (1, 0.32, 0.40, 0.68, 0.72), "lower_back": (1, 0.32, 0.74, 0.68, 0.90),
    "buttocks": (1, 0.32, 0.92, 0.68, 1.10),
}
LESION_LETTERS = {"hypopigmented_scar": "H", "striae_alba": "S", "atrophic_scar": "A",
                  "hypopigmented_atrophic_scar": "HA", "pih": "P", "hyperpigmented_scar": "D"}
MARK_R = 0.055  # marker radius, in view-box units


@dataclass(frozen=True)
class MapArea:
    area_id: int
    label: str
    region: str
    lesion_type: str


class BodyMap(QWidget):
    area_clicked = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("body_map")
        self.areas: list[MapArea] = []
        self.selected: int | None = None
        self._spots: list[tuple[QPointF, float, MapArea]] = []
        self.setMinimumSize(180, 170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(240, 230)

    def set_areas(self, areas: list[MapArea], selected: int | None = None) -> None:
        self.areas, self.selected = list(areas), selected
        self.update()

    def select(self, area_id: int | None) -> None:
        self.selected = area_id
        self.update()

    def spot(self, area_id: int) -> QPointF | None:
        """Where an area is drawn (widget pixels), for tests and tooltips."""
        return next((p for p, _r, a in self._spots if a.area_id == area_id), None)

    # --- geometry -------------------------------------------------------------------------------------------------
    def _boxes(self) -> list[QRectF]:
        h = max(10.0, self.height() - self._key_height() - 4)
        w = min(self.width() / 2.2, h / 2)
        gap = (self.width() - 2 * w) / 3
        return [QRectF(gap + i * (w + gap), 2, w, 2 * w) for i in range(2)]

    def _key_types(self) -> list[str]:
        return sorted({a.lesion_type for a in self.areas}, key=lambda t: LESION_LETTERS.get(t, "?"))

    def _key_height(self) -> float:
        """The key below the figures: one line per lesion type shown, and the line on clicks and rings."""
        return 14.0 * (len(self._key_types()) + 1) + 2

    def _layout(self) -> None:
        boxes = self._boxes()
        self._spots = []
        by_region: dict[str, list[MapArea]] = {}
        for a in self.areas:
            by_region.setdefault(a.region, []).append(a)
        for region, areas in by_region.items():
            view, x0, y0, x1, y1 = REGION_BOXES.get(region, (0, 0.40, 0.96, 0.60, 1.04))
            box = boxes[view]
            n = len(areas)
            cols = max(1, math.ceil(math.sqrt(n * (x1 - x0) / max(y1 - y0, 1e-6))))
            rows = math.ceil(n / cols)
            cell_w, cell_h = (x1 - x0) / cols * box.width(), (y1 - y0) / rows * box.width()
            full = MARK_R * box.width() * 2
            r = full if n == 1 else max(4.0, min(full, 0.5 * min(cell_w, cell_h)))  # shared: smaller, inside
            for k, a in enumerate(areas):
                cx = box.left() + x0 * box.width() + (k % cols + 0.5) * cell_w
                cy = box.top() + y0 * box.width() + (k // cols + 0.5) * cell_h
                self._spots.append((QPointF(cx, cy), r, a))

    # --- painting ---------------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt's name
        self._layout()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        for box, title in zip(self._boxes(), ("front", "back"), strict=True):
            p.setPen(QPen(QColor("#7a7a7a"), 1.5))
            p.setBrush(QBrush(QColor("#f4f1ec")))
            p.drawPath(_outline(box))
            p.setPen(QColor("#303030"))
            p.setFont(QFont("Sans Serif", 8))
            p.drawText(QRectF(box.left(), box.bottom() - 14, box.width(), 14), int(Qt.AlignmentFlag.AlignCenter),
                       title)
        for centre, r, a in self._spots:
            p.setPen(QPen(QColor("#000000"), 3 if a.area_id == self.selected else 1))
            p.setBrush(QBrush(QColor(LESION_COLORS.get(a.lesion_type, "#999999"))))
            p.drawEllipse(centre, r, r)
            if a.lesion_type in UV_FORBIDDEN_LESIONS:  # PIH or hyperpigmented: no UV; ringed and marked
                p.setPen(QPen(QColor("#d32f2f"), 2, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(centre, r + 3, r + 3)
            p.setPen(QColor("#ffffff" if a.lesion_type in ("pih", "atrophic_scar") else "#000000"))
            p.setFont(QFont("Sans Serif", 7, QFont.Weight.Bold))
            p.drawText(QRectF(centre.x() - r, centre.y() - r, 2 * r, 2 * r), int(Qt.AlignmentFlag.AlignCenter),
                       LESION_LETTERS.get(a.lesion_type, "?"))
        p.setFont(QFont("Sans Serif", 7))
        y = self.height() - self._key_height()
        for t in self._key_types():  # the key: each letter and colour in words
            p.setPen(QPen(QColor("#000000"), 1))
            p.setBrush(QBrush(QColor(LESION_COLORS.get(t, "#999999"))))
            p.drawEllipse(QPointF(10, y + 7), 5, 5)
            p.setPen(QColor("#303030"))
            p.drawText(QRectF(20, y, self.width() - 20, 14), int(Qt.AlignmentFlag.AlignVCenter),
                       f"{LESION_LETTERS.get(t, '?')} = {lesion_name(t)}"
                       + (" (no UV)" if t in UV_FORBIDDEN_LESIONS else ""))
            y += 14
        p.setPen(QColor("#303030"))
        p.drawText(QRectF(0, y, self.width(), 14), int(Qt.AlignmentFlag.AlignCenter),
                   "click an area to select it · dashed red ring: no UV (PIH, hyperpigmented)")
        p.end()

    def key_lines(self) -> list[str]:
        """The key's words (as painted), for tests."""
        return [f"{LESION_LETTERS.get(t, '?')} = {lesion_name(t)}" for t in self._key_types()]

    def mousePressEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802 - Qt's name
        if event is None:
            return
        self._layout()
        pos = event.position()
        for centre, r, a in reversed(self._spots):
            if (pos.x() - centre.x()) ** 2 + (pos.y() - centre.y()) ** 2 <= (r + 3) ** 2:
                self.select(a.area_id)
                self.area_clicked.emit(a.area_id)
                return

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:  # noqa: N802 - Qt's name
        if event is None:
            return
        pos = event.position()
        hit = next((a for c, r, a in self._spots if (pos.x() - c.x()) ** 2 + (pos.y() - c.y()) ** 2 <= r * r), None)
        self.setToolTip(f"{hit.label}: {lesion_name(hit.lesion_type)}, {region_name(hit.region)}" if hit else "")


def _outline(box: QRectF) -> QPainterPath:
    """A simple standing figure in the box (head, neck, torso, arms, legs), in view-box units scaled to it."""
    w = box.width()

    def r(x: float, y: float, ww: float, hh: float) -> QRectF:
        return QRectF(box.left() + x * w, box.top() + y * w, ww * w, hh * w)

    path = QPainterPath()
    path.addEllipse(r(0.38, 0.04, 0.24, 0.26))  # head
    path.addRect(r(0.45, 0.29, 0.10, 0.08))  # neck
    path.addRoundedRect(r(0.28, 0.36, 0.44, 0.62), 0.05 * w, 0.05 * w)  # torso
    path.addRoundedRect(r(0.14, 0.38, 0.12, 0.56), 0.04 * w, 0.04 * w)  # arms
    path.addRoundedRect(r(0.74, 0.38, 0.12, 0.56), 0.04 * w, 0.04 * w)
    path.addRoundedRect(r(0.29, 0.98, 0.19, 0.86), 0.05 * w, 0.05 * w)  # legs
    path.addRoundedRect(r(0.52, 0.98, 0.19, 0.86), 0.05 * w, 0.05 * w)
    return path.simplified()
