"""Clinical: find or create a patient by pseudonymous id, answer the screening, add treatment areas, start a course,
then ask the dose engine for today's plan. Every store call runs on the controller's worker thread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.errors import UserError
from workstation.protocols.model import LESION_TYPES, SKIN_TYPES
from workstation.store.records import Identity
from workstation.ui.response_form import NOTHING_ENTERED, ResponseTable
from workstation.ui.session_controller import SessionController
from workstation.visit import awaiting_healing, record_previous_responses


class PatientView(QWidget):
    def __init__(self, controller: SessionController, notify: Callable[[str, str], None],
                 on_plan: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller, self.notify, self.on_plan = controller, notify, on_plan
        self.patient: Any = None
        self.pseudonym = QLineEdit()
        self.pseudonym.setObjectName("pseudonym")
        self.pseudonym.setPlaceholderText("pseudonymous id, e.g. P-0042")
        find = QPushButton("Find or create")
        find.setObjectName("find_patient_button")
        find.clicked.connect(self.find_or_create)
        self.patient_label = QLabel("No patient chosen")
        self.patient_label.setObjectName("patient_label")
        # Identity: typed when the patient is registered, shown to confirm the right patient, kept only in the clinic
        # store's identity table; never in a plan, a recording or an export.
        self.family_name, self.given_name, self.birth_date = QLineEdit(), QLineEdit(), QLineEdit()
        self.family_name.setObjectName("family_name")
        self.given_name.setObjectName("given_name")
        self.birth_date.setObjectName("birth_date")
        self.family_name.setPlaceholderText("family name")
        self.given_name.setPlaceholderText("given name")
        self.birth_date.setPlaceholderText("born YYYY-MM-DD")
        for edit in (self.family_name, self.given_name, self.birth_date):
            edit.setToolTip("For a new patient, or one with no identity on file; for a known patient it is checked "
                            "against the file. Kept in the clinic store only: never in a recording or an export.")

        self.screening = QListWidget()
        self.screening.setObjectName("screening")
        self.screening.setWordWrap(True)
        save_screening = QPushButton("Save screening answers")
        save_screening.clicked.connect(self.save_screening)
        self.med = QDoubleSpinBox()
        self.med.setObjectName("med")
        self.med.setRange(0, 5000)
        self.med.setSpecialValueText("—")
        self.med.setSuffix(" mJ/cm²")
        save_med = QPushButton("Save MED for this light")
        save_med.setObjectName("save_med_button")
        save_med.setToolTip("The minimal erythema dose read at 24 h, measured on the connected light's model: an MED "
                            "does not carry over to another device model")
        save_med.clicked.connect(self.save_med)

        self.area_label, self.region, self.lesion = QLineEdit(), QComboBox(), QComboBox()
        self.area_label.setPlaceholderText("e.g. left cheek")
        self.lesion.addItems(list(LESION_TYPES))
        self.size = QDoubleSpinBox()
        self.size.setRange(0.1, 2000)
        self.size.setSuffix(" cm²")
        self.skin = QComboBox()
        self.skin.addItems(list(SKIN_TYPES))
        add_area = QPushButton("Add area")
        add_area.clicked.connect(self.add_area)
        self.areas = QListWidget()
        self.areas.setObjectName("areas")
        self.areas.setToolTip("Tick the areas of a new course; select one to load it into the form and correct it")
        self.areas.currentItemChanged.connect(self._area_selected)
        self._area_by_id: dict[int, Any] = {}
        self.change_reason = QLineEdit()
        self.change_reason.setObjectName("area_change_reason")
        self.change_reason.setPlaceholderText("why, e.g. darker than the skin around it: now PIH")
        self.correct_button = QPushButton("Correct the selected area")
        self.correct_button.setObjectName("correct_area_button")
        self.correct_button.setToolTip("Change the selected area to the values in the form; the old values, the "
                                       "reason and who changed it are kept. An area reclassified PIH gets no UV.")
        self.correct_button.clicked.connect(self.correct_area)

        self.protocol = QComboBox()
        self.protocol.setObjectName("protocol_choice")
        start_course = QPushButton("Start a course on the ticked areas")
        start_course.clicked.connect(self.start_course)
        self.courses = QComboBox()
        self.courses.setObjectName("course_choice")
        self.courses.currentIndexChanged.connect(self.load_previous_session)
        self.previous_label = QLabel("No previous session")
        self.previous_label.setWordWrap(True)
        self.previous = ResponseTable()
        self.previous.setObjectName("previous_response")
        self.previous_session_id: int | None = None
        save_previous = QPushButton("Save the previous session's response")
        save_previous.setObjectName("save_previous_button")
        save_previous.clicked.connect(self.save_previous)
        plan = QPushButton("Plan today's visit")
        plan.setObjectName("plan_button")
        plan.clicked.connect(self.plan_visit)

        who = QHBoxLayout()
        who.addWidget(QLabel("Patient"))
        who.addWidget(self.pseudonym, 1)
        who.addWidget(find)
        who.addWidget(self.patient_label, 2)
        ident = QHBoxLayout()
        ident.addWidget(QLabel("Identity (clinic store only)"))
        ident.addWidget(self.family_name, 1)
        ident.addWidget(self.given_name, 1)
        ident.addWidget(self.birth_date)
        ident.addStretch(1)
        scr = QGroupBox("Screening (tick every “yes”)")
        QVBoxLayout(scr).addWidget(self.screening)
        scr.layout().addWidget(save_screening)
        med_row = QHBoxLayout()
        med_row.addWidget(QLabel("MED"))
        med_row.addWidget(self.med, 1)
        med_row.addWidget(save_med)
        scr.layout().addLayout(med_row)
        area_box = QGroupBox("Treatment areas")
        form = QFormLayout(area_box)
        form.addRow("label", self.area_label)
        form.addRow("body region", self.region)
        form.addRow("lesion", self.lesion)
        form.addRow("size", self.size)
        form.addRow("skin type", self.skin)
        form.addRow(add_area)
        form.addRow(self.areas)
        form.addRow("reason", self.change_reason)
        form.addRow(self.correct_button)
        course_box = QGroupBox("Course")
        cf = QFormLayout(course_box)
        cf.addRow("protocol", self.protocol)
        cf.addRow(start_course)
        cf.addRow("course", self.courses)
        cf.addRow(self.previous_label)
        cf.addRow(self.previous)
        cf.addRow(save_previous)
        cf.addRow(plan)
        row = QHBoxLayout()
        for box in (scr, area_box, course_box):
            row.addWidget(box, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Patient and course</h2>"))
        layout.addLayout(who)
        layout.addLayout(ident)
        layout.addLayout(row, 1)

    def load_library(self) -> None:
        lib = self.controller.library
        self.screening.clear()
        for item in lib.tables.screening:
            it = QListWidgetItem(item.question)
            it.setToolTip(f"{item.question}\nsource: {item.source}")
            it.setData(Qt.ItemDataRole.UserRole, item.id)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Unchecked)
            self.screening.addItem(it)
        self.region.clear()
        self.region.addItems(sorted(lib.tables.needling.regions))
        self.protocol.clear()
        for pid, p in sorted(lib.protocols.items()):
            self.protocol.addItem(f"{pid} v{p.version}", pid)

    def _error(self, exc: Exception) -> None:
        self.notify(str(exc), "error")

    def _typed_identity(self) -> Identity | None:
        """The identity typed in the form, None if nothing was typed. UserError if it is incomplete or impossible."""
        family, given, born = (e.text().strip() for e in (self.family_name, self.given_name, self.birth_date))
        if not (family or given or born):
            return None
        if not family or not given:
            raise UserError("Type both the family name and the given name (or leave the identity empty).")
        birth = None
        if born:
            try:
                birth = dt.date.fromisoformat(born)
            except ValueError:
                raise UserError(f"Birth date {born!r} is not a date: type it as YYYY-MM-DD.") from None
            if not dt.date(1900, 1, 1) <= birth <= dt.date.today():
                raise UserError(f"Birth date {birth.isoformat()} is impossible: check it.")
        return Identity(family, given, birth)

    def find_or_create(self) -> None:
        pseudonym = self.pseudonym.text().strip()
        if not pseudonym:
            self.notify("Type the patient's pseudonymous id (never their name), then press Find or create.", "error")
            return
        try:
            typed = self._typed_identity()
        except UserError as exc:
            self.notify(str(exc), "error")
            return

        def work(store: Any) -> tuple:
            patient = store.find_patient(pseudonym)
            created = patient is None
            if created:
                patient = store.create_patient(pseudonym, identity=typed)
            on_file = store.identity(patient.id)
            if on_file is None and typed is not None:
                store.add_identity(patient.id, typed)
                on_file = typed
            return patient, created, on_file, store.areas(patient.id), store.courses(patient.id)

        def done(result: tuple) -> None:
            on_file = result[2]
            if typed is not None and on_file is not None and _differs(typed, on_file):
                # Perhaps the wrong patient: nothing of this record is shown or planned until the id is checked.
                self.patient = None
                self.areas.clear()
                self.courses.clear()
                self.patient_label.setText(f"{pseudonym}: not loaded, the identity typed does not match the file")
                self.notify(f"The identity typed is not the one on file for {pseudonym}: check that this is the "
                            "right patient and the right id. To load it anyway, clear the identity and press Find "
                            "again.", "error")
                return
            for edit in (self.family_name, self.given_name, self.birth_date):
                edit.clear()
            self._show_patient(result)

        self.controller.store_call(work, done, self._error)

    def _show_patient(self, result: tuple) -> None:
        self.patient, created, identity, areas, courses = result
        who = "no identity on file"
        if identity is not None:
            born = f", born {identity.birth_date.isoformat()}" if identity.birth_date else ""
            who = f"{identity.family_name.upper()}, {identity.given_name}{born}"
        self.patient_label.setText(f"{self.patient.pseudonym} ({'new' if created else 'found'}) — {who}")
        self.areas.clear()
        self._area_by_id = {a.id: a for a in areas}
        for a in areas:
            it = QListWidgetItem(f"{a.label} — {a.body_region}, {a.lesion_type}, {a.size_cm2:g} cm², type {a.skin_type}")
            it.setData(Qt.ItemDataRole.UserRole, a.id)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked)
            self.areas.addItem(it)
        self.courses.clear()
        for c in courses:
            self.courses.addItem(f"course {c.id}: {c.protocol_id}, from {c.started_on}", c.id)

    def _need_patient(self) -> bool:
        if self.patient is None:
            self.notify("Find or create the patient first.", "error")
        return self.patient is not None

    def save_screening(self) -> None:
        if not self._need_patient():
            return
        answers = {self.screening.item(i).data(Qt.ItemDataRole.UserRole):
                   self.screening.item(i).checkState() == Qt.CheckState.Checked for i in range(self.screening.count())}
        pid, who = self.patient.id, self.controller.operator

        def work(store: Any) -> int:
            for item_id, yes in answers.items():
                store.add_screening_answer(pid, item_id, yes, dt.date.today(), who)
            return len(answers)

        self.controller.store_call(work, lambda n: self.notify(f"{n} screening answers saved.", "info"), self._error)

    def save_med(self) -> None:
        if not self._need_patient():
            return
        if self.med.value() <= 0:
            self.notify("Type the MED in mJ/cm² (read at 24 h), then save it.", "error")
            return
        light = self.controller.rig.devices.get("light") if self.controller.rig else None
        model = light.identity.model if light is not None and light.identity else None
        if model is None:
            self.notify("Connect the light to record an MED: it is kept per device model.", "error")
            return
        pid, med = self.patient.id, self.med.value()
        self.controller.store_call(lambda store: store.add_med(pid, model, med, dt.date.today()),
                                   lambda _r: self.notify(f"MED {med:g} mJ/cm² on {model} saved.", "info"),
                                   self._error)

    def add_area(self) -> None:
        if not self._need_patient():
            return
        pid, args = self.patient.id, (self.area_label.text().strip(), self.region.currentText(),
                                      self.lesion.currentText(), self.size.value(), self.skin.currentText())
        self.controller.store_call(lambda store: store.add_area(pid, *args), lambda _a: self.find_or_create(),
                                   self._error)

    def _area_selected(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        area = self._area_by_id.get(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        if area is None:
            return
        self.area_label.setText(area.label)
        self.region.setCurrentText(area.body_region)
        self.lesion.setCurrentText(area.lesion_type)
        self.size.setValue(area.size_cm2)
        self.skin.setCurrentText(area.skin_type)

    def correct_area(self) -> None:
        if not self._need_patient():
            return
        item = self.areas.currentItem()
        area = self._area_by_id.get(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        if area is None:
            self.notify("Select the area to correct in the list, change its values in the form, say why, then "
                        "press Correct.", "error")
            return
        changes = {"label": self.area_label.text().strip(), "body_region": self.region.currentText(),
                   "lesion_type": self.lesion.currentText(), "size_cm2": self.size.value(),
                   "skin_type": self.skin.currentText()}
        reason, who = self.change_reason.text(), self.controller.operator

        def done(after: Any) -> None:
            said = [f"{field.replace('_', ' ')} {getattr(area, field)} → {getattr(after, field)}"
                    for field in changes if getattr(area, field) != getattr(after, field)]
            self.change_reason.clear()
            self.notify(f"Area {after.label} corrected ({'; '.join(said)}); the change and its reason are kept. "
                        "Plan the visit again: the plan follows the area as it is now.", "info")
            self.find_or_create()

        self.controller.store_call(lambda store: store.correct_area(area.id, who=who, reason=reason, **changes),
                                   done, self._error)

    def start_course(self) -> None:
        if not self._need_patient():
            return
        ids = [self.areas.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.areas.count())
               if self.areas.item(i).checkState() == Qt.CheckState.Checked]
        protocol = self.controller.library.get(self.protocol.currentData())
        pid = self.patient.id
        self.controller.store_call(lambda store: store.create_course(pid, protocol, ids, dt.date.today()),
                                   lambda _c: self.find_or_create(), self._error)

    def load_previous_session(self) -> None:
        """Show the course's last session with an empty response form when it has no response yet."""
        course_id = self.courses.currentData()
        self.previous_session_id = None
        self.previous.set_areas([])
        if course_id is None:
            self.previous_label.setText("No previous session")
            return

        library = self.controller.library

        def work(store: Any) -> tuple:
            course = store.course(course_id)
            return (store.history(course_id), [store.area(a) for a in course.area_ids],
                    awaiting_healing(store, library, course_id))

        def done(result: tuple) -> None:
            history, areas, healing = result
            if not history:
                self.previous_label.setText("First session of this course: no previous response to enter.")
                return
            last = history[-1]
            if healing:  # light is held back until a clinician confirms healing (item 8 of issue 9)
                sid = healing[-1][0]
                waiting = [(area_id, r) for s, area_id, r in healing if s == sid]
                labels = {a.id: a.label for a in areas}
                self.previous_session_id = sid
                self.previous.set_areas([(area_id, labels.get(area_id, str(area_id))) for area_id, _r in waiting])
                for row, (_area_id, r) in enumerate(waiting):
                    self.previous.set_scores(row, erythema_grade=r.erythema_grade, blistering=r.blistering,
                                             erythema_duration_h=r.erythema_duration_h, notes=r.notes)
                self.previous_label.setText("The last light session left marked erythema or blisters on "
                                            + ", ".join(labels.get(a, str(a)) for a, _r in waiting)
                                            + ": tick “healed” if it has healed, save, then plan (light stays off "
                                            "until then).")
                return
            if last.responses:
                self.previous_label.setText(f"Previous session ({last.session_date}): response entered.")
                return
            self.previous_session_id = last.id
            treated = {t.area_id for t in last.treatments}
            self.previous_label.setText(f"Previous session ({last.session_date}) has no response yet: enter it "
                                        "before planning, the dose depends on it.")
            self.previous.set_areas([(a.id, a.label) for a in areas if a.id in treated or not treated])

        self.controller.store_call(work, done, self._error)

    def save_previous(self) -> None:
        session_id = self.previous_session_id
        if session_id is None:
            self.notify("There is no previous session waiting for its response.", "error")
            return
        responses = self.previous.responses()
        if not responses:
            self.notify(NOTHING_ENTERED, "error")
            return

        def work(store: Any) -> int:
            return record_previous_responses(store, session_id, responses)

        def done(n: int) -> None:
            self.notify(f"Previous session's response saved for {n} area(s).", "info")
            self.load_previous_session()

        self.controller.store_call(work, done, self._error)

    def plan_visit(self) -> None:
        if not self._need_patient():
            return
        if self.courses.currentData() is None:
            self.notify("Start a course first (choose the protocol and tick its areas).", "error")
            return
        self.controller.plan_course(self.courses.currentData(), self.patient.pseudonym,
                                    lambda _p: self.on_plan(), self._error)


def _differs(typed: Identity, on_file: Identity) -> bool:
    """Names compared without case or surrounding blanks; a birth date counts only when both have one."""
    def norm(name: str) -> str:
        return " ".join(name.split()).casefold()

    dates_differ = typed.birth_date is not None and on_file.birth_date is not None and \
        typed.birth_date != on_file.birth_date
    return (norm(typed.family_name) != norm(on_file.family_name) or norm(typed.given_name) != norm(on_file.given_name)
            or dates_differ)
