"""One row per treated area for the outcome scores of a session (CLINICAL.md): erythema grade 0–4, blistering,
pain 0–10, repigmentation band, a note, how long the erythema lasted (h), swelling, itching, and (at the next visit)
whether the erythema or blisters have healed. Used after the session and, at the next visit, for the previous one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QWidget,
)

from workstation.store.records import REPIGMENTATION_BANDS, Response

COLUMNS = ("area", "erythema grade", "blistering", "pain 0–10", "repigmentation %", "notes", "erythema lasted h",
           "swelling", "itching", "healed (seen today)")
GRADE, BLISTER, PAIN, BAND, NOTES, DURATION, SWELLING, ITCHING, HEALED = range(1, 10)
MAX_ERYTHEMA_H = 1440.0  # 60 days: the store refuses more


class ResponseTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeader().setStretchLastSection(True)
        # every column as wide as its heading and content (never "epig"), scrolled sideways in a narrow column
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_areas(self, areas: Sequence[tuple[int, str]]) -> None:
        """(area id, label) per row; every score starts empty."""
        self.setRowCount(len(areas))
        for row, (area_id, text) in enumerate(areas):
            label = QLabel(text)
            label.setProperty("area_id", area_id)
            self.setCellWidget(row, 0, label)
            grade = QComboBox()
            grade.addItems(["—", "0", "1", "2", "3", "4"])
            self.setCellWidget(row, GRADE, grade)
            self.setCellWidget(row, BLISTER, QCheckBox())
            pain = QSpinBox()
            pain.setRange(-1, 10)
            pain.setSpecialValueText("—")
            pain.setValue(-1)
            self.setCellWidget(row, PAIN, pain)
            band = QComboBox()
            band.addItems(["—", *REPIGMENTATION_BANDS])
            self.setCellWidget(row, BAND, band)
            self.setCellWidget(row, NOTES, QLineEdit())
            hours = QDoubleSpinBox()
            hours.setRange(-1.0, MAX_ERYTHEMA_H)
            hours.setDecimals(0)
            hours.setSuffix(" h")
            hours.setSpecialValueText("—")
            hours.setValue(-1.0)
            hours.setToolTip("How long the redness lasted; over 48 h counts as marked erythema (no light until it "
                             "clears)")
            self.setCellWidget(row, DURATION, hours)
            self.setCellWidget(row, SWELLING, QCheckBox())
            self.setCellWidget(row, ITCHING, QCheckBox())
            healed = QCheckBox()
            healed.setToolTip("Tick when you see today that the erythema or blisters have healed: the next plan may "
                              "then put light on this area again, at a reduced dose")
            self.setCellWidget(row, HEALED, healed)
        self.resizeColumnsToContents()

    def set_scores(self, row: int, *, erythema_grade: int | None = None, repigmentation_band: str | None = None,
                   pain_0_10: int | None = None, blistering: bool = False, notes: str = "",
                   erythema_duration_h: float | None = None, swelling: bool = False, itching: bool = False,
                   healed: bool = False) -> None:
        self.cellWidget(row, GRADE).setCurrentText("—" if erythema_grade is None else str(erythema_grade))
        self.cellWidget(row, BLISTER).setChecked(blistering)
        self.cellWidget(row, PAIN).setValue(-1 if pain_0_10 is None else pain_0_10)
        self.cellWidget(row, BAND).setCurrentText(repigmentation_band or "—")
        self.cellWidget(row, NOTES).setText(notes)
        self.cellWidget(row, DURATION).setValue(-1.0 if erythema_duration_h is None else erythema_duration_h)
        self.cellWidget(row, SWELLING).setChecked(swelling)
        self.cellWidget(row, ITCHING).setChecked(itching)
        self.cellWidget(row, HEALED).setChecked(healed)

    def responses(self, today: dt.date | None = None) -> list[Response]:
        """The rows that have at least one score (empty rows are not responses). A ticked "healed" is dated today."""
        today = today or dt.date.today()
        out = []
        for row in range(self.rowCount()):
            grade = self.cellWidget(row, GRADE).currentText()
            pain = self.cellWidget(row, PAIN).value()
            band = self.cellWidget(row, BAND).currentText()
            hours = self.cellWidget(row, DURATION).value()
            r = Response(int(self.cellWidget(row, 0).property("area_id")),
                         erythema_grade=None if grade == "—" else int(grade),
                         blistering=self.cellWidget(row, BLISTER).isChecked(), pain_0_10=None if pain < 0 else pain,
                         repigmentation_band=None if band == "—" else band,
                         erythema_duration_h=None if hours < 0 else float(hours),
                         notes=self.cellWidget(row, NOTES).text(),
                         swelling=self.cellWidget(row, SWELLING).isChecked(),
                         itching=self.cellWidget(row, ITCHING).isChecked(),
                         healed_on=today if self.cellWidget(row, HEALED).isChecked() else None)
            if (r.erythema_grade is not None or r.pain_0_10 is not None or r.repigmentation_band is not None
                    or r.blistering or r.notes.strip() or r.erythema_duration_h is not None or r.swelling
                    or r.itching or r.healed_on is not None):
                out.append(r)
        return out


NOTHING_ENTERED = ("Enter at least one score (erythema grade, how long it lasted, pain, repigmentation, swelling, "
                   "itching, healed or a note) before saving.")
