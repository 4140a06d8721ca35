"""The plan the dose engine proposes, with its reasons; each number can be changed within the protocol's bounds, with
a reason that is kept in the plan (dose.override). A value out of bounds is a message saying the allowed range."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.dose import OVERRIDABLE, SessionPlan
from workstation.dose.override import LABELS
from workstation.errors import UserError
from workstation.ui.numbers import exact, number_from_text
from workstation.ui.wording import FIELD_UNITS, field_name, modality_name, protocol_title, quantity, scrub

COLUMNS = ("Area", "Treatment", "Target dose (mJ/cm²)", "Depth (mm)", "Stroke rate (Hz)", "Passes")


EXAMPLES = {"target_dose_mj_cm2": "250", "depth_mm": "1.5", "stroke_rate_hz": "100", "passes": "3"}

class PlanView(QWidget):
    def __init__(self, override: Callable[[int, str, float, str], SessionPlan],
                 notify: Callable[[str, str], None], on_start: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._override, self.notify = override, notify
        self.plan: SessionPlan | None = None
        self.title = QLabel("<h2>Today's plan</h2>")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("plan_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(150)
        self.reasons = QPlainTextEdit()
        self.reasons.setObjectName("plan_reasons")
        self.reasons.setReadOnly(True)

        self.area_choice = QComboBox()
        self.area_choice.setObjectName("override_area")
        self.area_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # never "abdomen-"
        self.field_choice = QComboBox()
        self.field_choice.setObjectName("override_field")
        for f in OVERRIDABLE:
            self.field_choice.addItem(LABELS[f], f)
        self.value_edit = QLineEdit()
        self.value_edit.setObjectName("override_value")
        self.value_edit.setPlaceholderText("new value")
        self.reason_edit = QLineEdit()
        self.reason_edit.setObjectName("override_reason")
        self.reason_edit.setPlaceholderText("reason (kept with the plan)")
        self.apply_button = QPushButton("Change")
        self.apply_button.setObjectName("override_apply")
        self.apply_button.clicked.connect(self.apply_override)
        self.field_choice.currentIndexChanged.connect(self._show_bounds)
        self.area_choice.currentIndexChanged.connect(self._show_bounds)
        self.bounds_label = QLabel("")
        self.bounds_label.setObjectName("override_bounds")
        self.start_button = QPushButton("Start treatment")
        self.start_button.setObjectName("start_treatment_button")
        self.start_button.setMinimumHeight(40)
        self.start_button.clicked.connect(on_start)
        self.back_button = QPushButton("◀ Patient and course")  # back without disconnecting the devices
        self.back_button.setObjectName("back_to_patient_button")
        self.back_button.setMinimumHeight(40)
        self.back_button.hide()

        # a trip latched before the treatment (telemetry lost while planning): named here, with its reset
        self.tripped_label = QLabel("")
        self.tripped_label.setObjectName("plan_tripped")
        self.tripped_label.setWordWrap(True)
        self.tripped_label.setStyleSheet("background:#d32f2f;color:white;font-weight:bold;padding:4px")
        self.reset_button = QPushButton("Reset interlocks")
        self.reset_button.setObjectName("plan_reset_button")
        self.tripped_label.hide()
        self.reset_button.hide()
        edit = QHBoxLayout()
        edit.addWidget(QLabel("Change"))
        edit.addWidget(self.area_choice)
        edit.addWidget(self.field_choice)
        edit.addWidget(self.value_edit)
        edit.addWidget(self.reason_edit, 2)
        edit.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addLayout(edit)
        layout.addWidget(self.bounds_label)
        layout.addWidget(QLabel("<b>Why these numbers, warnings, aftercare</b>"))
        layout.addWidget(self.reasons, 1)
        tripped = QHBoxLayout()
        tripped.addWidget(self.tripped_label, 1)
        tripped.addWidget(self.reset_button)
        layout.addLayout(tripped)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.start_button, 1)
        layout.addLayout(buttons)
        QWidget.setTabOrder(self.apply_button, self.back_button)  # reading order: back, then start
        QWidget.setTabOrder(self.back_button, self.start_button)

    def show_plan(self, plan: SessionPlan) -> None:
        self.plan = plan
        can_start = not plan.refused and bool(plan.execution_steps())  # enabled only when Start can succeed now
        self.start_button.setEnabled(can_start)
        self.start_button.setToolTip("" if can_start else "Nothing can be treated today: see the reasons below.")
        self.title.setText(f"<h2>Session {plan.session_number} — "
                           f"{protocol_title(plan.protocol_id, plan.protocol_version)}</h2>")
        self.table.setRowCount(len(plan.areas))
        for row, a in enumerate(plan.areas):
            values = (a.label, modality_name(a.modality), a.target_dose_mj_cm2, a.depth_mm, a.stroke_rate_hz, a.passes)
            for col, v in enumerate(values):
                text = quantity(v) if v is None or isinstance(v, int | float) else str(v)
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        current = self.area_choice.currentData()
        self.area_choice.blockSignals(True)
        self.area_choice.clear()
        for a in plan.areas:
            self.area_choice.addItem(a.label, a.area_id)
        if current is not None and self.area_choice.findData(current) >= 0:
            self.area_choice.setCurrentIndex(self.area_choice.findData(current))
        self.area_choice.blockSignals(False)
        lines: list[str] = []
        if plan.refused:
            first = plan.refusal.first_allowed_date.isoformat()
            lines.append(f"REFUSED: {plan.refusal.reason}"
                         + ("" if first in plan.refusal.reason else f" (first allowed {first})"))
        lines += [f"BLOCK: {b}" for b in plan.blocks] + [f"WARNING: {w}" for w in plan.warnings]
        for a in plan.areas:
            lines += [f"{a.label}: {r}" for r in a.reasons]
            lines += [f"{a.label}: {field_name(o.field)} changed from {quantity(o.proposed)} to {quantity(o.value)} "
                      f"by {o.who}: {o.reason}"
                      for o in a.overrides]
        lines += [f"{a.label}: expected response: {a.expected_response}" for a in plan.areas if a.expected_response]
        lines += plan.uv_record_lines()
        lines += [f"note: {n}" for n in plan.notes]
        lines += [f"aftercare: {c}" for c in plan.aftercare]
        self.reasons.setPlainText(scrub("\n".join(lines)))
        self._show_bounds()

    def reset_form(self) -> None:
        """A new plan (another patient, another visit): the Change form starts empty, not with the last values."""
        self.field_choice.setCurrentIndex(0)
        self.value_edit.clear()
        self.reason_edit.clear()
        self.area_choice.clear()

    def _show_bounds(self) -> None:
        if self.plan is None or self.area_choice.currentData() is None:
            return
        a = self.plan.area(self.area_choice.currentData())
        b = a.bounds.get(self.field_choice.currentData())
        self.bounds_label.setText(f"allowed: {b.minimum:g}–{b.maximum:g} {b.unit}" if b else
                                  "this number is not part of the plan for that area")

    def show_tripped(self, names: list[str]) -> None:
        """The latched interlocks (display names), with Reset interlocks; hidden when none is latched."""
        self.tripped_label.setText("Interlock latched: " + ", ".join(names) + " — check the cause, then Reset "
                                   "interlocks before starting." if names else "")
        self.tripped_label.setVisible(bool(names))
        self.reset_button.setVisible(bool(names))

    def apply_override(self) -> None:
        if self.plan is None:
            return
        area_id = self.area_choice.currentData()
        field = self.field_choice.currentData()
        unit = FIELD_UNITS.get(field, "")
        try:
            value = number_from_text(self.value_edit.text(), f"new {LABELS[field]}", unit,
                                    EXAMPLES.get(field, "250"))
        except UserError as exc:
            self.notify(str(exc), "error")
            return
        try:
            plan = self._override(area_id, field, value, self.reason_edit.text())
        except UserError as exc:
            self.notify(str(exc), "error")
            return
        self.show_plan(plan)
        self.value_edit.clear()
        self.reason_edit.clear()
        self.notify(f"The {LABELS[field]} of {plan.area(area_id).label} is now {exact(value, unit)}; the reason is kept.", "info")
