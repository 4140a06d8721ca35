"""The session journal and the response fields in the clinic store: a session written in progress, treatment rows
upserted with running totals (a resumed step never fires the one-row-per-area-and-modality constraint), closing
states, and healing confirmed on a response."""

from __future__ import annotations

from datetime import date

import pytest

from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.session.journal import journal_end
from workstation.store import ClinicStore, Response, Treatment


@pytest.fixture()
def course(store_url):
    with ClinicStore.open(store_url, training=False) as store:
        p = store.create_patient("CX-J1")
        area = store.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 3.5, "III")
        c = store.create_course(p.id, load_library().get("hypopigmented-scar-light"), [area.id], date(2026, 3, 1))
        yield store, c, area


def test_journal_columns_exist_after_migrating(course):
    store, _c, _a = course
    sessions, responses = set(store._conn.columns("sessions")), set(store._conn.columns("responses"))
    assert {"state", "process", "started_at", "ended_at", "recording_path", "outcome_note"} <= sessions
    assert {"swelling", "itching", "healed_on", "erythema_duration_h"} <= responses


def test_a_session_in_progress_is_journalled_and_closed(course):
    store, c, area = course
    sid = store.add_session(c.id, date(2026, 3, 2), state="in_progress", process="123:456", recording_path="r.h5")
    assert store.in_progress_sessions() == [{"id": sid, "course_id": c.id, "process": "123:456",
                                             "started_at": store.session_state(sid)["started_at"],
                                             "recording_path": "r.h5"}]
    store.journal_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=94.5))  # interrupted
    store.journal_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=260.0))  # the resumed run's total
    (hist,) = store.history(c.id)
    assert hist.state == "in_progress" and [t.dose_mj_cm2 for t in hist.treatments] == [260.0]
    store.close_session(sid, "completed")
    assert store.in_progress_sessions() == []
    assert store.session_state(sid)["state"] == "completed" and store.session_state(sid)["ended_at"]
    with pytest.raises(ValueError):
        store.close_session(sid, "fine")


def test_a_session_s_end_is_written_whole_or_not_at_all(course):
    """journal_end: the treatments' totals and the closing in one transaction; a refused treatment leaves nothing of
    the end (the session stays in progress, its earlier journal rows as they were)."""
    store, c, area = course
    lib = load_library()
    needle = store.add_area(c.patient_id, "right cheek", "face", "atrophic_scar", 2.0, "III", distinct_place=True)
    c2 = store.create_course(c.patient_id, lib.get("hypopigmented-atrophic-scar-combined"), [area.id, needle.id],
                             date(2026, 3, 1))
    first = store.add_session(c.id, date(2026, 3, 2), state="in_progress")
    journal_end(store, first, [Treatment(area.id, "light", dose_mj_cm2=260.0)], "completed", "all steps")
    assert store.session_state(first)["state"] == "completed"
    other = store.add_session(c2.id, date(2026, 3, 2), state="in_progress")
    store.journal_treatment(other, Treatment(needle.id, "needling", depth_mm=0.5, stroke_rate_hz=100.0, passes=1))
    ends = [Treatment(needle.id, "needling", depth_mm=1.0, stroke_rate_hz=100.0, passes=3),
            Treatment(area.id, "light", dose_mj_cm2=100.0)]  # a second light session on the area that day
    with pytest.raises(UserError, match="^Area left cheek of CX-J1 already had a light session on 2026-03-02"):
        journal_end(store, other, ends, "completed")
    (hist,) = store.history(c2.id)
    assert hist.state == "in_progress" and [(t.modality, t.passes) for t in hist.treatments] == [("needling", 1)]
    journal_end(store, other, ends[:1], "partial", "the light step was refused")
    (hist,) = store.history(c2.id)
    assert hist.state == "partial" and [(t.modality, t.passes) for t in hist.treatments] == [("needling", 3)]


def test_earlier_sessions_read_as_ended(course):
    store, c, _a = course
    sid = store.add_session(c.id, date(2026, 3, 2))
    assert store.session_state(sid)["state"] == "ended" and store.history(c.id)[0].state == "ended"


def test_response_fields_and_healing_confirmation(course):
    store, c, area = course
    sid = store.add_session(c.id, date(2026, 3, 2))
    store.add_response(sid, Response(area.id, erythema_grade=2, erythema_duration_h=60, swelling=True, itching=True))
    store.confirm_healed(sid, area.id, date(2026, 3, 9))
    (r,) = store.history(c.id)[0].responses
    assert (r.erythema_grade, r.erythema_duration_h, r.swelling, r.itching, r.healed_on) == (
        2, 60.0, True, True, date(2026, 3, 9))
    with pytest.raises(UserError, match="0–1440 h"):
        store.add_response(sid, Response(area.id, erythema_duration_h=-3))
