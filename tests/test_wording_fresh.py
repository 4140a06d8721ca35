"""A fresh tester's wording and record findings (issue 11 follow-up): the MED reason keeps its citation intact, a
reused area that differs from the scenario is refused naming both, the texts read right (one date, "1 day", no
"1–1 mm", no "0 s"), and the UV record gives the total with today's plan."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workstation.dose import plan_session
from workstation.dose.override import override
from workstation.dose.plan import AreaPlan, Bounds, days
from workstation.errors import UserError
from workstation.protocols import load_library, seeds_dir
from workstation.session.runner import run_scenario
from workstation.session.scenario import load_scenario
from workstation.store import (
    Area,
    ClinicStore,
    Course,
    MedMeasurement,
    ScreeningAnswer,
    SessionRecord,
    Treatment,
)

LIB = load_library()
T = LIB.tables
D0 = date(2026, 3, 2)
ALL_NO = tuple(ScreeningAnswer(i.id, False, date(2026, 3, 1), "dr a") for i in T.screening)


def _plan(pid, area, meds=(), history=(), other=(), day=0, model="XTRAC"):
    p = LIB.get(pid)
    course = Course(1, 1, p.id, p.version, p.course.sessions, p.course.interval_days, D0, (area.id,))
    return plan_session(protocol=p, tables=T, course=course, areas=[area], history=history, other_history=other,
                        screening=ALL_NO, visit_date=D0 + timedelta(days=day), device_model=model, meds=list(meds))


# ---- 12: the citation is never rewritten -----------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(pid=st.sampled_from(sorted(p.id for p in LIB.protocols.values() if p.light)), med=st.floats(130, 5000),
       skin=st.sampled_from(["I", "II", "III", "IV", "V", "VI"]))
def test_the_med_reason_keeps_every_source_intact(pid, med, skin):
    area = Area(1, 1, "a", "abdomen", LIB.get(pid).lesion_types[0], 4.0, skin)
    text = " ".join(_plan(pid, area, [MedMeasurement("XTRAC", med, D0)]).area(1).reasons)
    if "PMC4410179 (start from the" in text:
        assert T.light.sources["med"] in text
    assert text.count(f"the MED of {med:g} mJ/cm² measured on XTRAC") >= 1
    assert "start from the MED of" not in text


# ---- 18: a reused area that differs from what is given ---------------------------------------------------------------
def test_a_reused_area_with_another_lesion_is_refused_naming_both(tmp_path):
    with ClinicStore.open(tmp_path / "s.sqlite3", training=True) as s:
        p = s.create_patient("CX-R1")
        s.add_area(p.id, "left-cheek", "face", "hypopigmented_atrophic_scar", 4, "III")
        with pytest.raises(UserError) as exc:
            s.find_or_create_area(p.id, "left-cheek", "face", "hypopigmented_scar", 4, "III")
        msg = str(exc.value)
        assert "lesion type hypopigmented_atrophic_scar on file, hypopigmented_scar given" in msg
        with pytest.raises(UserError, match="skin type III on file, IV given"):
            s.find_or_create_area(p.id, "left-cheek", "face", "hypopigmented_atrophic_scar", 4, "IV")
        assert s.find_or_create_area(p.id, "left-cheek", "face", "hypopigmented_atrophic_scar", 4, "III").id == 1


def test_a_scenario_run_against_a_store_with_another_lesion_is_refused(tmp_path):
    src = seeds_dir() / "scenarios" / "combined-uneventful.toml"
    store = tmp_path / "s.sqlite3"
    with ClinicStore.open(store, training=True) as s:
        first = load_scenario(src)
        p = s.create_patient(first.pseudonym)
        a = first.areas[0]
        s.add_area(p.id, a.area_id, a.region, "atrophic_scar", a.size_cm2, first.skin_type_roman)
    with pytest.raises(UserError, match="does not match the one given"):
        run_scenario(first, tmp_path / "rec", store_path=store, out=lambda _line: None)


# ---- 20: wording -----------------------------------------------------------------------------------------------------
def test_days_reads_right():
    assert (days(1), days(2), days(0)) == ("1 day", "2 days", "0 days")


def test_a_refusal_names_its_date_once():
    area = Area(1, 1, "a", "abdomen", "hypopigmented_scar", 4.0, "III")
    hist = [SessionRecord(1, 1, D0, "XTRAC", (Treatment(1, "light", dose_mj_cm2=300.0),))]
    plan = _plan("hypopigmented-scar-light", area, history=hist, day=1)
    assert plan.refused and (D0 + timedelta(days=2)).isoformat() not in plan.refusal.reason


def test_first_light_on_a_place_with_history_says_so():
    area = Area(1, 1, "a", "abdomen", "hypopigmented_scar", 4.0, "III")
    other = [SessionRecord(9, 2, D0 - timedelta(days=100 - i), "XTRAC", (Treatment(1, "light", dose_mj_cm2=100.0),))
             for i in range(20)]
    text = " ".join(_plan("hypopigmented-scar-light", area, other=other, day=30).area(1).reasons)
    assert "First light session on this area." not in text
    assert "First light session of this course on this area; its place has had 2000 mJ/cm²" in text


def test_an_override_of_nan_says_number_not_nan_outside():
    a = AreaPlan(1, "a", "abdomen", "hypopigmented_scar", "III", "light", False, target_dose_mj_cm2=200.0,
                 bounds={"target_dose_mj_cm2": Bounds(1.0, 200.0, "mJ/cm²")})
    with pytest.raises(UserError) as exc:
        override(a, "target_dose_mj_cm2", float("nan"), "r", "dr")
    assert "nan mJ/cm² is outside" not in str(exc.value) and "must be a number within 1–200" in str(exc.value)


def test_a_short_exposure_is_not_zero_seconds():
    area = Area(1, 1, "a", "face", "hypopigmented_scar", 4.0, "III")
    p = LIB.get("hypopigmented-scar-light")
    course = Course(1, 1, p.id, p.version, p.course.sessions, p.course.interval_days, D0, (1,))
    plan = plan_session(protocol=p, tables=T, course=course, areas=[area], history=[], screening=ALL_NO,
                        visit_date=D0, device_model="XTRAC", meds=[MedMeasurement("XTRAC", 150, D0)],
                        irradiance_mw_cm2=500.0)
    note = next(n for n in plan.notes if n.startswith("Expected session time"))
    assert "0.2 s exposure" in note and " 0 s exposure" not in note


# ---- 22: the UV record with today's plan -----------------------------------------------------------------------------
def test_the_uv_record_gives_the_total_with_todays_plan():
    area = Area(1, 1, "a", "abdomen", "hypopigmented_scar", 4.0, "III")
    hist = [SessionRecord(1, 1, D0, "XTRAC", (Treatment(1, "light", dose_mj_cm2=300.0),))]
    from workstation.dose.place import UvTotals
    p = LIB.get("hypopigmented-scar-light")
    course = Course(1, 1, p.id, p.version, p.course.sessions, p.course.interval_days, D0, (1,))
    plan = plan_session(protocol=p, tables=T, course=course, areas=[area], history=hist, screening=ALL_NO,
                        visit_date=D0 + timedelta(days=7), device_model="XTRAC", patient_uv=UvTotals(500.0, 2))
    dose = plan.area(1).target_dose_mj_cm2
    assert dose == 300  # no grade recorded: hold
    lines = plan.uv_record_lines()
    assert lines[0].endswith("300 mJ/cm² in 1 exposure before this session; 600 mJ/cm² in 2 exposures with "
                             "today's plan")
    assert lines[1].endswith("500 mJ/cm² in 2 exposures before this session; 800 mJ/cm² in 3 exposures with "
                             "today's plan")
