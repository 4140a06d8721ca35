"""One row per treated area for the outcome scores of a session (CLINICAL.md): erythema grade 0–4, blistering,
pain 0–10, repigmentation band, a note. Used after the session and, at the next visit, for the previous one."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QSpinBox, QTableWidget, QWidget

from workstation.store.records import REPIGMENTATION_BANDS, Response

COLUMNS = ("area", "erythema grade", "blistering", "pain 0–10", "repigmentation %", "notes")


class ResponseTable(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.horizontalHeader().setStretchLastSection(True)

    def set_areas(self, areas: Sequence[tuple[int, str]]) -> None:
        """(area id, label) per row; every score starts empty."""
        self.setRowCount(len(areas))
        for row, (area_id, text) in enumerate(areas):
            label = QLabel(text)
            label.setProperty("area_id", area_id)
            self.setCellWidget(row, 0, label)
            grade = QComboBox()
            grade.addItems(["—", "0", "1", "2", "3", "4"])
            self.setCellWidget(row, 1, grade)
            self.setCellWidget(row, 2, QCheckBox())
            pain = QSpinBox()
            pain.setRange(-1, 10)
            pain.setSpecialValueText("—")
            pain.setValue(-1)
            self.setCellWidget(row, 3, pain)
            band = QComboBox()
            band.addItems(["—", *REPIGMENTATION_BANDS])
            self.setCellWidget(row, 4, band)
            self.setCellWidget(row, 5, QLineEdit())
        self.resizeColumnsToContents()

    def set_scores(self, row: int, *, erythema_grade: int | None = None, repigmentation_band: str | None = None,
                   pain_0_10: int | None = None, blistering: bool = False, notes: str = "") -> None:
        self.cellWidget(row, 1).setCurrentText("—" if erythema_grade is None else str(erythema_grade))
        self.cellWidget(row, 2).setChecked(blistering)
        self.cellWidget(row, 3).setValue(-1 if pain_0_10 is None else pain_0_10)
        self.cellWidget(row, 4).setCurrentText(repigmentation_band or "—")
        self.cellWidget(row, 5).setText(notes)

    def responses(self) -> list[Response]:
        """The rows that have at least one score (empty rows are not responses)."""
        out = []
        for row in range(self.rowCount()):
            grade = self.cellWidget(row, 1).currentText()
            pain = self.cellWidget(row, 3).value()
            band = self.cellWidget(row, 4).currentText()
            r = Response(int(self.cellWidget(row, 0).property("area_id")),
                         erythema_grade=None if grade == "—" else int(grade),
                         blistering=self.cellWidget(row, 2).isChecked(), pain_0_10=None if pain < 0 else pain,
                         repigmentation_band=None if band == "—" else band, notes=self.cellWidget(row, 5).text())
            if (r.erythema_grade is not None or r.pain_0_10 is not None or r.repigmentation_band is not None
                    or r.blistering or r.notes.strip()):
                out.append(r)
        return out


NOTHING_ENTERED = "Enter at least one score (erythema grade, pain, repigmentation or a note) before saving."
