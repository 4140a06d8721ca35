"""Clinical: find or create a patient by pseudonymous id, answer the screening, add treatment areas, start a course,
then ask the dose engine for today's plan. Every store call runs on the controller's worker thread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QCheckBox,
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
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workstation.dose.light import med_on_file, newest_med
from workstation.errors import UserError
from workstation.protocols.model import LESION_TYPES, SKIN_TYPES
from workstation.session import roles
from workstation.session.planning import awaiting_healing, record_previous_responses
from workstation.store.records import Identity
from workstation.ui.body_map import BodyMap, MapArea
from workstation.ui.patient_checks import differs, med_from_text, typed_identity
from workstation.ui.response_form import NOTHING_ENTERED, ResponseTable
from workstation.ui.session_controller import SessionController
from workstation.ui.wording import field_change, lesion_name, protocol_title, quantity, region_name
from workstation.words import counted


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
        find.clicked.connect(lambda: self.find_or_create())
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
        self.med = QLineEdit()  # typed, then checked against the light's range: a spin box would clamp silently
        self.med.setObjectName("med")
        self.med.setPlaceholderText("mJ/cm², read at 24 h")
        self.med_on_file = QLabel("MED on file: —")
        self.med_on_file.setObjectName("med_on_file")
        save_med = QPushButton("Save MED for this light")
        save_med.setObjectName("save_med_button")
        save_med.setToolTip("The minimal erythema dose read at 24 h, measured on the connected light's model: an MED "
                            "does not carry over to another device model")
        save_med.clicked.connect(self.save_med)

        self.area_label, self.region, self.lesion = QLineEdit(), QComboBox(), QComboBox()
        self.area_label.setPlaceholderText("e.g. left cheek")
        for lesion in LESION_TYPES:
            self.lesion.addItem(lesion_name(lesion), lesion)
        self.size = QDoubleSpinBox()
        self.size.setRange(0.1, 2000)
        self.size.setSuffix(" cm²")
        self.skin = QComboBox()
        self.skin.addItems(list(SKIN_TYPES))
        # issue 11: the scar's kind and age (the plan states the expected response from them), and whether a new area
        # on a region the patient already has is a distinct place.
        self.scar_kind = QComboBox()
        self.scar_kind.setObjectName("scar_kind")
        self.scar_age = QSpinBox()
        self.scar_age.setObjectName("scar_age_months")
        self.scar_age.setRange(-1, 1200)
        self.scar_age.setSpecialValueText("unknown")
        self.scar_age.setValue(-1)
        self.scar_age.setSuffix(" months")
        self.distinct_place = QCheckBox("a distinct place from the patient's other areas on this region")
        self.distinct_place.setObjectName("distinct_place")
        add_area = QPushButton("Add area")
        add_area.clicked.connect(self.add_area)
        self.areas = QListWidget()
        self.areas.setObjectName("areas")
        self.areas.setWordWrap(True)  # an area's line wraps instead of being cut
        self.areas.setToolTip("Tick the areas of a new course; select one to load it into the form and correct it")
        self.areas.currentItemChanged.connect(self._area_selected)
        self.body_map = BodyMap()
        self.body_map.area_clicked.connect(self._select_area_row)
        self._area_by_id: dict[int, Any] = {}
        self._select_course: int | None = None
        self._mismatch_warned: tuple | None = None
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
        scr.layout().addWidget(self.med_on_file)
        area_box = QGroupBox("Treatment areas")
        form = QFormLayout(area_box)
        form.addRow("label", self.area_label)
        form.addRow("body region", self.region)
        form.addRow("lesion", self.lesion)
        form.addRow("size", self.size)
        form.addRow("skin type", self.skin)
        form.addRow("scar kind", self.scar_kind)
        form.addRow("scar age", self.scar_age)
        form.addRow(self.distinct_place)
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
        map_box = QGroupBox("Body map")
        QVBoxLayout(map_box).addWidget(self.body_map)
        first_col = QWidget()
        first = QVBoxLayout(first_col)
        first.setContentsMargins(0, 0, 0, 0)
        first.addWidget(scr, 3)
        first.addWidget(map_box, 2)
        row = QHBoxLayout()
        # three equal columns whatever their content (adding an area or a course never moves them): the width comes
        # from the stretch only; long texts wrap, or elide with the whole text on hover
        for column in (first_col, area_box, course_box):
            column.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            column.setMinimumWidth(300)
            row.addWidget(column, 1)
        for box in (self.protocol, self.courses, self.region, self.lesion, self.scar_kind):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(12)
        self.med_on_file.setWordWrap(True)
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
        for region in sorted(lib.tables.needling.regions, key=region_name):
            self.region.addItem(region_name(region), region)
        self.scar_kind.clear()
        self.scar_kind.addItem("unknown", None)
        for kind, label in (lib.tables.scar_kinds.labels.items() if lib.tables.scar_kinds else ()):
            self.scar_kind.addItem(label, kind)
        self.protocol.clear()
        for pid, p in sorted(lib.protocols.items()):
            self.protocol.addItem(f"{p.title} (v{p.version})", pid)
            self.protocol.setItemData(self.protocol.count() - 1, f"{p.title} (version {p.version})",
                                      Qt.ItemDataRole.ToolTipRole)

    def _error(self, exc: Exception) -> None:
        self.notify(str(exc), "error")

    def _typed_identity(self) -> Identity | None:
        """The identity typed in the form, None if nothing was typed. UserError if it is incomplete or impossible."""
        return typed_identity(*(e.text().strip() for e in (self.family_name, self.given_name, self.birth_date)))

    def find_or_create(self, announce: bool = True) -> None:
        """Load the patient typed (create it if new); `announce` says so in the message area (a reload after a
        change keeps that change's message instead)."""
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
            return patient, created, on_file, store.areas(patient.id), store.courses(patient.id), store.meds(patient.id)

        def done(result: tuple) -> None:
            on_file = result[2]
            if typed is not None and on_file is not None and differs(typed, on_file):
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
            self._show_patient(result, announce)

        self.controller.store_call(work, done, self._error)

    def _show_patient(self, result: tuple, announce: bool = False) -> None:
        previous = self.patient
        self.patient, created, identity, areas, courses, meds = result
        who = "no identity on file"
        if identity is not None:
            born = f", born {identity.birth_date.isoformat()}" if identity.birth_date else ""
            who = f"{identity.family_name.upper()}, {identity.given_name}{born}"
        self.patient_label.setText(f"{self.patient.pseudonym} ({'new' if created else 'found'}) — {who}")
        if announce:  # a success replaces the error it answers
            self.notify(f"Patient {self.patient.pseudonym} {'created' if created else 'found'}: check the identity "
                        "shown, then plan the visit.", "info")
        self.med.clear()
        self._show_med(meds)
        self.areas.clear()
        self._area_by_id = {a.id: a for a in areas}
        for a in areas:
            it = QListWidgetItem(f"{a.label} — {region_name(a.body_region)}, {lesion_name(a.lesion_type)}, "
                                 f"{a.size_cm2:g} cm², skin type {a.skin_type}")
            it.setToolTip(it.text())
            it.setData(Qt.ItemDataRole.UserRole, a.id)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked)
            self.areas.addItem(it)
        keep = self._select_course if self._select_course is not None else self.courses.currentData()
        if previous is None or previous.id != self.patient.id:
            keep = self._select_course
            self._clear_area_form()  # nothing of the last patient's areas is offered for this one
        self._select_course = None
        self.courses.blockSignals(True)
        self.body_map.set_areas([MapArea(a.id, a.label, a.body_region, a.lesion_type) for a in areas])
        self.courses.clear()
        for n, c in enumerate(sorted(courses, key=lambda c: c.id), start=1):  # numbered per patient, not store ids
            self.courses.addItem(f"Course {n}, from {c.started_on}: {protocol_title(c.protocol_id)}", c.id)
            self.courses.setItemData(self.courses.count() - 1, self.courses.itemText(self.courses.count() - 1),
                                     Qt.ItemDataRole.ToolTipRole)
        # the course chosen stays chosen (a correction or a reconnect reloads the patient); otherwise the newest
        index = self.courses.findData(keep) if keep is not None else -1
        self.courses.setCurrentIndex(index if index >= 0 else self.courses.count() - 1)
        self.courses.blockSignals(False)
        self.load_previous_session()

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
        light = self.controller.rig.device_of_kind(roles.LIGHT) if self.controller.rig else None
        try:  # refused, never clamped: a wrong MED would set every later dose
            med, model = med_from_text(self.med.text(), light)
        except UserError as exc:
            self.notify(str(exc), "error")
            return
        pid = self.patient.id

        def saved(meds: Any) -> None:
            self.med.clear()
            self._show_med(meds)
            self.notify(f"MED {quantity(med, 'mJ/cm²')} on {model} saved.", "info")

        def save(store: Any) -> Any:
            store.add_med(pid, model, med, dt.date.today())
            return store.meds(pid)

        self.controller.store_call(save, saved, self._error)

    def _show_med(self, meds: Any) -> None:
        """The MED the plan will use: the same function as the dose engine (dose.light.med_on_file)."""
        model = self._light_model()
        m = med_on_file(meds, model) if model else newest_med(meds)
        self.med_on_file.setText(f"MED on file: {quantity(m.med_mj_cm2, 'mJ/cm²')} on {m.device_model}, "
                                 f"{m.measured_on}" if m else "MED on file: none for this light")
        self.med_on_file.setToolTip(self.med_on_file.text())

    def _clear_area_form(self) -> None:
        """The area form empty: no name, the first region and lesion in the lists, no size, skin type and scar
        kind to choose, scar age unknown; the reason for a correction empty."""
        self.area_label.clear()
        for box in (self.region, self.lesion, self.skin, self.scar_kind):
            box.setCurrentIndex(0)
        self.size.setValue(self.size.minimum())
        self.scar_age.setValue(-1)
        self.change_reason.clear()
        self.areas.clearSelection()

    def _light_model(self) -> str | None:
        light = self.controller.rig.device_of_kind(roles.LIGHT) if self.controller.rig else None
        return light.identity.model if light is not None and light.identity else None

    def add_area(self) -> None:
        if not self._need_patient():
            return
        pid, args = self.patient.id, (self.area_label.text().strip(), self.region.currentData(),
                                      self.lesion.currentData(), self.size.value(), self.skin.currentText())

        def added(area: Any) -> None:
            self.notify(f"Area {area.label} added.", "info")
            self.find_or_create(announce=False)

        kw = {**self._scar_fields(), "distinct_place": self.distinct_place.isChecked()}
        self.controller.store_call(lambda store: store.add_area(pid, *args, **kw), added, self._error)

    def _select_area_row(self, area_id: int) -> None:
        """A click on the body map selects the area in the list (and so loads it into the form)."""
        for i in range(self.areas.count()):
            if self.areas.item(i).data(Qt.ItemDataRole.UserRole) == area_id:
                self.areas.setCurrentRow(i)

    def _scar_fields(self) -> dict[str, Any]:
        age = self.scar_age.value()
        return {"scar_kind": self.scar_kind.currentData(), "scar_age_months": None if age < 0 else age}

    def _area_selected(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        area = self._area_by_id.get(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        if area is None:
            return
        self.body_map.select(area.id)
        self.area_label.setText(area.label)
        self.region.setCurrentIndex(self.region.findData(area.body_region))
        self.lesion.setCurrentIndex(self.lesion.findData(area.lesion_type))
        self.size.setValue(area.size_cm2)
        self.skin.setCurrentText(area.skin_type)
        self.scar_kind.setCurrentIndex(max(0, self.scar_kind.findData(area.scar_kind)))
        self.scar_age.setValue(-1 if area.scar_age_months is None else area.scar_age_months)

    def correct_area(self) -> None:
        if not self._need_patient():
            return
        item = self.areas.currentItem()
        area = self._area_by_id.get(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        if area is None:
            self.notify("Select the area to correct in the list, change its values in the form, say why, then "
                        "press Correct.", "error")
            return
        changes = {"label": self.area_label.text().strip(), "body_region": self.region.currentData(),
                   "lesion_type": self.lesion.currentData(), "size_cm2": self.size.value(),
                   "skin_type": self.skin.currentText(), **self._scar_fields()}
        reason, who = self.change_reason.text(), self.controller.operator

        def done(after: Any) -> None:
            said = [field_change(field, getattr(area, field), getattr(after, field))
                    for field in changes if getattr(area, field) != getattr(after, field)]
            self.change_reason.clear()
            self.notify(f"Area {after.label} corrected ({'; '.join(said)}); the change and its reason are kept. "
                        "Plan the visit again: the plan follows the area as it is now.", "info")
            self.find_or_create(announce=False)

        self.controller.store_call(lambda store: store.correct_area(area.id, who=who, reason=reason, **changes),
                                   done, self._error)

    def start_course(self) -> None:
        if not self._need_patient():
            return
        ids = [self.areas.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.areas.count())
               if self.areas.item(i).checkState() == Qt.CheckState.Checked]
        protocol = self.controller.library.get(self.protocol.currentData())
        misfits = [a for i in ids if (a := self._area_by_id.get(i)) and a.lesion_type not in protocol.lesion_types]
        confirm = (protocol.id, tuple(ids))
        if misfits and self._mismatch_warned != confirm:
            self._mismatch_warned = confirm
            self.notify(f"“{protocol.title}” is written for {', '.join(lesion_name(t).lower() for t in protocol.lesion_types)}"
                        f"; {', '.join(f'{a.label} is {lesion_name(a.lesion_type).lower()}' for a in misfits)}. "
                        "Choose another protocol, or press Start a course again to start it anyway.", "warning")
            return
        self._mismatch_warned = None
        pid = self.patient.id

        def started(course: Any) -> None:
            self._select_course = course.id  # the new course is the one planned next
            self.notify(f"Course {course.id} ({protocol.title}) started; it is the course selected.", "info")
            self.find_or_create(announce=False)

        self.controller.store_call(lambda store: store.create_course(pid, protocol, ids, dt.date.today()),
                                   started, self._error)

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
            self.notify(f"Previous session's response saved for {counted(n, 'area')}.", "info")
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
