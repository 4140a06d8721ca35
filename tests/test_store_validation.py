"""Issue 11 item 4 and 6: the store checks typed values in words (never SQLite's text), and an area is a place on
the body, once."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest

from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.store import MIGRATIONS, ClinicStore, Response, Treatment, migrate
from workstation.store.db import IntegrityError

LIB = load_library()
TODAY = date.today()
NEXT_YEAR = TODAY + timedelta(days=365)


@pytest.fixture()
def filled(store_url):
    with ClinicStore.open(store_url, training=True) as s:
        p = s.create_patient("CX-V1")
        area = s.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 4, "III")
        course = s.create_course(p.id, LIB.get("hypopigmented-scar-light"), [area.id], TODAY)
        sid = s.add_session(course.id, TODAY)
        yield s, p, area, course, sid


BAD = [
    ("light dose -50", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=-50)),
     "delivered light dose is -50 mJ/cm²; it must be 0–5000 mJ/cm²"),
    ("light dose nan", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=float("nan"))),
     "delivered light dose is nan"),
    ("light dose inf", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=float("inf"))),
     "must be 0–5000"),
    ("light without dose", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "light")), "needs the delivered"),
    ("depth 3 mm", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "needling", depth_mm=3.0)),
     "needling depth is 3 mm; it must be 0–2.5 mm"),
    ("passes -1", lambda s, p, a, c, sid: s.add_treatment(sid, Treatment(a.id, "needling", passes=-1)),
     "number of passes is -1"),
    ("region cheek", lambda s, p, a, c, sid: s.add_area(p.id, "x", "cheek", "hypopigmented_scar", 1, "III"),
     "Body region 'cheek' is not in the region table"),
    ("region corrected to cheek", lambda s, p, a, c, sid: s.correct_area(a.id, body_region="cheek", who="dr",
                                                                         reason="r"), "not in the region table"),
    ("size nan", lambda s, p, a, c, sid: s.add_area(p.id, "x", "neck", "hypopigmented_scar", float("nan"), "III"),
     "area size is nan"),
    ("scar age -1", lambda s, p, a, c, sid: s.add_area(p.id, "x", "neck", "striae_alba", 1, "III", scar_age_months=-1),
     "scar age is -1 months"),
    ("scar kind", lambda s, p, a, c, sid: s.add_area(p.id, "x", "neck", "striae_alba", 1, "III", scar_kind="keloid"),
     "Scar kind 'keloid' is unknown"),
    ("session next year", lambda s, p, a, c, sid: s.add_session(c.id, NEXT_YEAR), "session date"),
    ("MED next year", lambda s, p, a, c, sid: s.add_med(p.id, "XTRAC", 300, NEXT_YEAR), "MED measurement date"),
    ("MED inf", lambda s, p, a, c, sid: s.add_med(p.id, "XTRAC", float("inf"), TODAY), "The MED is inf"),
    ("MED negative", lambda s, p, a, c, sid: s.add_med(p.id, "XTRAC", -3, TODAY), "must be above 0"),
    ("screening next year", lambda s, p, a, c, sid: s.add_screening_answer(p.id, "porphyria", False, NEXT_YEAR, "dr"),
     "screening answer date"),
    ("course next year", lambda s, p, a, c, sid: s.create_course(p.id, LIB.get("hypopigmented-scar-light"), [a.id],
                                                                  NEXT_YEAR), "course start date"),
    ("unknown screening item", lambda s, p, a, c, sid: s.add_screening_answer(p.id, "pregnant", True, TODAY, "dr"),
     "Screening item 'pregnant' is unknown"),
    ("erythema -10 h", lambda s, p, a, c, sid: s.add_response(sid, Response(a.id, erythema_duration_h=-10)),
     "erythema duration is -10 h"),
    ("erythema grade 5", lambda s, p, a, c, sid: s.add_response(sid, Response(a.id, erythema_grade=5)),
     "erythema grade (NHS Tayside scale) is 5; it must be 0–4"),
    ("erythema grade 1.5", lambda s, p, a, c, sid: s.add_response(sid, Response(a.id, erythema_grade=1.5)),
     "must be a whole number"),
    ("pain 11", lambda s, p, a, c, sid: s.add_response(sid, Response(a.id, pain_0_10=11)), "pain score is 11"),
    ("second response", lambda s, p, a, c, sid: [s.add_response(sid, Response(a.id, erythema_grade=1))
                                                 for _ in range(2)], "one response per session"),
]


@pytest.mark.parametrize("desc,call,words", BAD, ids=[b[0] for b in BAD])
def test_typed_values_are_checked_in_words_and_nothing_is_written(filled, desc, call, words):
    s, p, area, course, sid = filled
    before = s.export_patient("CX-V1")
    with pytest.raises(UserError) as exc:
        call(s, p, area, course, sid)
    msg = str(exc.value)
    assert words in msg
    assert "CHECK" not in msg and "constraint" not in msg.lower() and "sqlite" not in msg.lower()
    after = s.export_patient("CX-V1")
    if desc != "second response":
        assert after == before


def test_todays_dates_and_zero_doses_are_accepted(filled):
    s, p, area, course, sid = filled
    s.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=0.0))  # an exposure stopped before any dose
    s.add_response(sid, Response(area.id, erythema_grade=0, erythema_duration_h=0))
    s.add_med(p.id, "XTRAC", 300, TODAY)
    s.add_screening_answer(p.id, "porphyria", False, TODAY, "dr")


def test_an_area_is_a_place_on_the_body_once(filled):
    s, p, area, course, sid = filled
    with pytest.raises(UserError, match="already has an open area labelled 'left cheek'"):
        s.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 4, "III")
    with pytest.raises(UserError, match="already has an area on the face \\(left cheek\\). If it is the same place"):
        s.add_area(p.id, "right cheek", "face", "hypopigmented_scar", 4, "III")
    right = s.add_area(p.id, "right cheek", "face", "hypopigmented_scar", 4, "III", distinct_place=True)
    assert right.id != area.id
    assert s.find_or_create_area(p.id, "left cheek", "face", "hypopigmented_scar", 4, "III") == area
    with pytest.raises(UserError, match="region face on file, neck given"):
        s.find_or_create_area(p.id, "left cheek", "neck", "hypopigmented_scar", 4, "III")
    with pytest.raises(UserError, match="choose another label"):
        s.correct_area(right.id, label="left cheek", who="dr", reason="typo")
    closed = s.close_area(area.id, TODAY, who="dr", reason="course finished, scar repigmented")
    assert closed.closed_on == TODAY
    again = s.add_area(p.id, "left cheek", "face", "hypopigmented_scar", 4, "III", distinct_place=True)
    assert again.id not in (area.id, right.id)
    with pytest.raises(UserError):
        s.close_area(area.id, TODAY, who="dr", reason="twice")


def test_the_store_itself_refuses_a_second_open_area_with_the_same_label(filled):
    s, p, area, *_ = filled
    with pytest.raises(IntegrityError):
        with s.transaction() as c:
            c.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type) VALUES "
                      "(?, 'left cheek', 'face', 'pih', 1, 'III')", (p.id,))


def test_the_migration_renames_duplicate_open_labels_and_keeps_the_change(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    before_mine = next(i for i, m in enumerate(MIGRATIONS) if "areas_open_label" in m)  # versions = index + 1
    migrate(conn, upto=before_mine, role="training")
    conn.execute("INSERT INTO patients VALUES (1, 'TRAIN-0001', '2026-01-01T00:00:00+00:00')")
    for _ in range(3):  # what 25 runs of a scenario against one store used to leave
        conn.execute("INSERT INTO areas (patient_id, label, body_region, lesion_type, size_cm2, skin_type) VALUES "
                     "(1, 'left-cheek', 'face', 'hypopigmented_atrophic_scar', 6, 'III')")
    conn.close()
    with ClinicStore.open(path, training=True) as s:
        assert [a.label for a in s.areas(1)] == ["left-cheek", "left-cheek #2", "left-cheek #3"]
        assert s.area_changes(2)[0].old == "left-cheek" and "same label" in s.area_changes(2)[0].reason
        assert s.area(1).scar_age_months is None and s.area(1).scar_kind is None
