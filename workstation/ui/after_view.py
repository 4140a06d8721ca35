"""After the session: the summary, the aftercare advice (sun avoidance), the response entry per area, the PDF report
and the course view."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workstation.recording.format import report_path
from workstation.session.outcome import NOT_RECORDED, started_modalities, trip_stop_words
from workstation.ui.alarm_groups import condition_lines
from workstation.ui.course_view import CourseView
from workstation.ui.report import report_failure_words, write_session_report
from workstation.ui.report_data import read_report
from workstation.ui.response_form import NOTHING_ENTERED, ResponseTable
from workstation.ui.session_controller import SessionController
from workstation.ui.wording import (
    count,
    device_name,
    field_name,
    interlock_name,
    lesion_name,
    modality_name,
    quantity,
)


class AfterView(QWidget):
    def __init__(self, controller: SessionController, notify: Callable[[str, str], None],
                 report_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller, self.notify = controller, notify
        self.report_dir = Path(report_dir)
        self.extra_lines: Callable[[], list[str]] = list
        self.alarm_events: Callable[[], list] = list  # the session's alarm signals and STOPs (the alarm panel's)
        self.report_path: Path | None = None
        self.summary = QPlainTextEdit()
        self.summary.setObjectName("after_summary")
        self.summary.setReadOnly(True)
        self.aftercare = QLabel()
        self.aftercare.setObjectName("aftercare")
        self.aftercare.setWordWrap(True)
        self.aftercare.setStyleSheet("background:#fff8e1;padding:8px;font-size:14px")
        self.responses = ResponseTable()
        self.responses.setObjectName("response_table")
        self.save_button = QPushButton("Save response")
        self.save_button.setObjectName("save_response_button")
        self.save_button.clicked.connect(self.save_responses)
        self.report_button = QPushButton("Write PDF report")
        self.report_button.setObjectName("report_button")
        self.report_button.clicked.connect(self.write_report)
        self.course = CourseView()
        self.course.setObjectName("course_view")

        left = QVBoxLayout()
        left.addWidget(QLabel("<h2>Session summary</h2>"))
        left.addWidget(self.summary, 2)
        left.addWidget(QLabel("<b>Aftercare for the patient</b>"))
        left.addWidget(self.aftercare)
        left.addWidget(QLabel("<b>Response</b> (erythema shows about 4 h after treatment: enter it now or at the "
                              "next visit)"))
        left.addWidget(self.responses, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.report_button)
        buttons.addStretch(1)
        left.addLayout(buttons)
        left_widget = QWidget()
        left_widget.setLayout(left)
        split = QSplitter()
        split.addWidget(left_widget)
        split.addWidget(self.course)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(split)

    # --- content ----------------------------------------------------------------------------------------------
    def report_lines(self) -> list[str]:
        c = self.controller
        saved, plan = c.saved, c.plan
        if saved is None or plan is None:
            return []
        s = saved.summary
        lines = [f"Patient {c.pseudonym}, operator {c.operator}, {c.mode} mode, {datetime.now():%Y-%m-%d %H:%M}",
                 f"Protocol {plan.protocol_id} v{plan.protocol_version}, session {plan.session_number}",
                 "## Outcome",
                 f"Session {s['state']}" + (f": {s['abort_reason']}" if s["abort_reason"] else ""),
                 f"Steps done: {s['steps_done']} of {s['steps_planned']}"]
        for r in s["results"]:
            what = (f"{quantity(r['delivered_dose_mj_cm2'], 'mJ/cm²')} delivered" if r["modality"] == "light"
                    else f"{count(int(r['passes_done']), 'pass')} at {quantity(r.get('depth_mm') or 0, 'mm')}")
            label = next((a.label for a in plan.areas if str(a.area_id) == str(r["area"])), r["area"])
            lines.append(f"{label}, {modality_name(r['modality'])}: {r['outcome']}, {what}"
                         + (f" ({r['note']})" if r["note"] else ""))
        lines.append("## Plan")
        for a in plan.areas:
            numbers = [f"dose {quantity(a.target_dose_mj_cm2, 'mJ/cm²')}" if a.target_dose_mj_cm2 else "",
                       f"depth {quantity(a.depth_mm, 'mm')}, {quantity(a.stroke_rate_hz, 'Hz')}, "
                       + (count(int(a.passes), "pass") if a.passes is not None else "no passes") if a.depth_mm else ""]
            lines.append(f"{a.label} ({lesion_name(a.lesion_type)}, skin type {a.skin_type}): "
                         f"{modality_name(a.modality)}" + "".join(f"; {n}" for n in numbers if n))
            lines += [f"  {field_name(o.field)} changed {quantity(o.proposed)} → {quantity(o.value)} by {o.who}: "
                      f"{o.reason}" for o in a.overrides]
        lines += plan.uv_record_lines()  # the UV record, before and with this session (issue 11)
        grouped = condition_lines(self.alarm_events())  # the alarm panel's grouping (alarm_groups)
        if grouped:
            lines.append("## Alarms and operator actions")
            lines += grouped
        if s["trips"]:  # the workstation's measured stop time per device, one line per device stopped
            lines.append("## Stop times")
            lines += [f"{device_name(t['device'])}: {trip_stop_words(t['latency_ms'], t.get('stop', 'stop written'))} "
                      f"({interlock_name(t['interlock']).lower()})"
                      + (NOT_RECORDED if t.get("in_recording") is False else "") for t in s["trips"]]
        lines.append("## Aftercare")
        lines += self.aftercare_lines()
        lines += self.extra_lines()
        lines.append("## Recording")
        lines.append(f"{saved.recording} ({saved.checksum_words})")
        if saved.store_failure:  # the journal is behind the recording until the next start completes it
            lines.append(f"Store not written: {saved.store_failure}")
        return lines

    def aftercare_lines(self) -> list[str]:
        """The aftercare for what this session started, not for all it planned (SessionPlan.aftercare_given)."""
        c = self.controller
        assert c.plan is not None and c.saved is not None
        return c.plan.aftercare_given(started_modalities((r["modality"], r["outcome"])
                                                         for r in c.saved.summary["results"]))

    def show_session(self) -> None:
        c = self.controller
        assert c.plan is not None
        self.summary.setPlainText("\n".join(line.removeprefix("## ").upper() if line.startswith("## ") else line
                                            for line in self.report_lines()))
        self.aftercare.setText("<br>".join(html.escape(line) for line in self.aftercare_lines())
                               or "Avoid sun for 24–48 h; sunscreen from 24 h.")
        areas = [a for a in c.plan.areas if a.modality != "none"] or list(c.plan.areas)
        self.responses.set_areas([(a.area_id, a.label) for a in areas])
        self.save_button.setEnabled(True)
        self.report_path = None
        self.refresh_course()

    def refresh_course(self) -> None:
        def done(result: Any) -> None:
            history, areas = result
            self.course.show_course(history, areas)

        self.controller.course_history(done, lambda exc: self.notify(f"The course could not be read: {exc}", "error"))

    # --- actions ----------------------------------------------------------------------------------------------
    def save_responses(self) -> None:
        responses = self.responses.responses()
        if not responses:
            self.notify(NOTHING_ENTERED, "error")
            return

        def done(n: int) -> None:
            self.save_button.setEnabled(False)
            self.notify(f"Response saved for {n} area{'s' if n != 1 else ''}; the next plan will use it.", "info")
            self.refresh_course()

        self.controller.save_responses(responses, done, lambda exc: self.notify(str(exc), "error"))

    def write_report(self) -> None:
        """Refresh the course charts from the store first, so the report shows them complete, then write it."""
        c = self.controller
        if c.saved is None:
            self.notify("End the session before writing its report.", "error")
            return

        def with_course(result: Any) -> None:
            self.course.show_course(*result)
            self._write_report()

        c.course_history(with_course, lambda exc: self.notify(f"The course could not be read: {exc}", "error"))

    def _write_report(self) -> None:
        """The report is drawn from the session's recording (not from the screen), with the response the store
        holds for it, on the store's worker thread."""
        c = self.controller
        assert c.saved is not None
        if c.saved.recording is None:
            self.notify("This session has no recording: there is nothing to draw the report from.", "error")
            return
        recording = Path(c.saved.recording)
        path = report_path(recording)  # beside its recording
        extra = self.extra_lines()

        def work(store: Any) -> Path:
            data = read_report(recording, store)
            data.extra = extra
            write_session_report(data, path)
            return path

        def done(p: Path) -> None:
            self.report_path = p
            self.notify(f"Report written: {p.name}, in {p.parent}.", "info")

        c.store_call(work, done, lambda exc: self.notify(report_failure_words(exc), "error"))
