"""Issue 17's fresh tester, item 6: "Session N" meant the store's id in some sentences and the course's count in
others. Now a user reads one meaning: "session 3 of the course", the count the plan shows (its session_number), with
the store's id only as the session's record number, "(record no. 17)" — one helper (words.session_named, counted by
store.session_label) used by every sentence. Both engines; a source check keeps new sentences from naming the id as
"session N"."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from workstation.protocols import load_library
from workstation.session.planning import plan_visit
from workstation.store import ClinicStore, Treatment
from workstation.words import first_upper, session_named

WORKSTATION = Path(__file__).resolve().parents[1] / "workstation"


def test_the_helper_names_the_course_count_and_the_record_number():
    assert session_named(17, 3) == "session 3 of the course (record no. 17)"
    assert session_named(17) == "session record no. 17"
    assert first_upper(session_named(17, 3)) == "Session 3 of the course (record no. 17)"


def test_the_label_is_the_count_the_plan_showed_and_the_sentences_agree(store_url):
    library = load_library()
    start = date.today() - timedelta(days=120)
    with ClinicStore.open(store_url, training=True) as store:
        p = store.create_patient("P-0006")
        area = store.add_area(p.id, "back", "back", "atrophic_scar", 4, "II")
        other = store.create_patient("P-0007")  # another patient's sessions come first in the store: ids differ
        oarea = store.add_area(other.id, "back", "back", "atrophic_scar", 4, "II")
        ocourse = store.create_course(other.id, library.get("atrophic-scar-needling"), [oarea.id], start).id
        for k in range(3):
            s = store.add_session(ocourse, start + timedelta(days=28 * k))
            store.add_treatment(s, Treatment(oarea.id, "needling", depth_mm=1.0, stroke_rate_hz=100.0, passes=2))
        course = store.create_course(p.id, library.get("atrophic-scar-needling"), [area.id], start).id
        labels, numbers = [], []
        for k, gives in enumerate((True, False, True)):  # the second delivered nothing (aborted): not counted
            day = start + timedelta(days=35 * k)
            numbers.append(plan_visit(store, library, course, day, device_model=None).session_number)
            sid = store.add_session(course, day)
            if gives:
                store.add_treatment(sid, Treatment(area.id, "needling", depth_mm=1.0, stroke_rate_hz=100.0, passes=2))
            labels.append((sid, store.session_label(sid)))
        assert numbers == [1, 2, 2]
        assert [label for _, label in labels] == [session_named(sid, n) for (sid, _), n in zip(labels, numbers,
                                                                                                strict=True)]
        assert labels[0][1] == f"session 1 of the course (record no. {labels[0][0]})" and labels[0][0] == 4
        assert store.session_label(999) == "session record no. 999"
        try:
            store.verify_recording(labels[2][0])
        except Exception as exc:  # noqa: BLE001 - the refusal's words are what is checked
            said = str(exc)
        assert said == f"{first_upper(labels[2][1])} has no recording linked."


ID_AS_SESSION = re.compile(r"""[Ss]ession #?\{(sid|session_id|s\.id|rec\.id|row\[.id.\]|r\[.id.\]|session\[.id.\]|"""
                           r"""closed\.session_id|c\.session_id|visit\.session_id|self\.session_id|[a-z_]*\.session_id)\}""")


def test_no_sentence_calls_the_store_id_session_n():
    """Every f-string under workstation/ that puts a session's store id after the word "session" (a log line is not
    a sentence a user reads, and passes the id as an argument, never in an f-string here)."""
    found = []
    for f in sorted(WORKSTATION.rglob("*.py")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if ID_AS_SESSION.search(line):
                found.append(f"{f.relative_to(WORKSTATION)}:{n}: {line.strip()}")
    assert found == []
