"""A fresh tester's inputs against issue 11 (and more of the same kind): device model names, an MED on another model,
a new MED mid-course, treatments on areas outside the session's course, same-place corrections, closed areas, dates,
typed values of every public store write (hypothesis), scar kinds that do not fit the lesion."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workstation.dose import plan_next_session
from workstation.errors import UserError
from workstation.protocols import load_library
from workstation.store import ClinicStore, Response, Treatment

LIB = load_library()
TODAY = date.today()
LIGHT_PROTOCOLS = sorted(p.id for p in LIB.protocols.values() if p.light is not None)
COMBINED = "hypopigmented-atrophic-scar-combined"


def _lesion(pid: str) -> str:
    return LIB.get(pid).lesion_types[0]


@pytest.fixture()
def store(tmp_path):
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        yield s


def _course(s, protocol_id=COMBINED, skin="III", region="abdomen", started=TODAY - timedelta(days=60), pseudo="CX-E1"):
    p = s.create_patient(pseudo)
    for item in LIB.tables.screening:
        s.add_screening_answer(p.id, item.id, False, started, "dr a")
    a = s.add_area(p.id, "flank", region, _lesion(protocol_id), 4, skin)
    c = s.create_course(p.id, LIB.get(protocol_id), [a.id], started)
    return p, a, c


# ---- 1: device model names and an MED on another model ------------------------------------------------------------
@pytest.mark.parametrize("stored", ["Light-UVB308", "light-uvb308 ", "  LIGHT-uvb308", "light-uvb308\t"])
def test_an_med_matches_its_model_whatever_the_case_or_spacing(store, stored):
    p, a, c = _course(store)
    store.add_med(p.id, stored, 250, TODAY)
    plan = plan_next_session(store, LIB, c.id, TODAY, device_model="light-uvb308")
    assert plan.area(a.id).target_dose_mj_cm2 == 175, plan.area(a.id).reasons   # 70 % of 250, not the 260 start
    assert store.meds(p.id)[0].device_model == stored.strip()


@pytest.mark.parametrize("protocol_id", LIGHT_PROTOCOLS)
@pytest.mark.parametrize("session_model", ["other-model", None, "  "])
def test_an_med_for_another_model_or_an_unknown_model_blocks_light_under_every_protocol(store, protocol_id,
                                                                                     session_model):
    p, a, c = _course(store, protocol_id)
    store.add_med(p.id, "Light-UVB308", 30, TODAY)
    plan = plan_next_session(store, LIB, c.id, TODAY, device_model=session_model)
    area = plan.area(a.id)
    assert area.target_dose_mj_cm2 is None and not area.has_light
    words = "an MED of 30 mJ/cm² measured on model Light-UVB308"
    assert any(words in r and "measure the MED on this device" in r for r in area.reasons), area.reasons
    assert any(words in w and "does not carry to this device" in w for w in plan.warnings), plan.warnings
    assert not any("NB-UVB start for skin type" in r for r in area.reasons)


def test_without_any_med_the_skin_type_start_stands(store):
    p, a, c = _course(store)
    assert plan_next_session(store, LIB, c.id, TODAY, device_model=None).area(a.id).target_dose_mj_cm2 == 260


# ---- 2: a new MED mid-course bounds the next dose -----------------------------------------------------------------
def _dosed(store, dose, days_ago=7, protocol_id=COMBINED):
    p, a, c = _course(store, protocol_id)
    sid = store.add_session(c.id, TODAY - timedelta(days=days_ago), device_model="XTRAC")
    store.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=dose))
    store.add_response(sid, Response(a.id, erythema_grade=0))
    return p, a, c


def test_a_lower_med_measured_mid_course_bounds_the_next_dose(store):
    p, a, c = _dosed(store, 900)
    assert plan_next_session(store, LIB, c.id, TODAY, device_model="XTRAC").area(a.id).target_dose_mj_cm2 == 990
    store.add_med(p.id, "XTRAC", 200, TODAY)
    area = plan_next_session(store, LIB, c.id, TODAY, device_model="XTRAC").area(a.id)
    assert area.target_dose_mj_cm2 == 140, area.reasons
    assert area.bounds["target_dose_mj_cm2"].maximum == 140
    assert any("new MED" in r and "clinician reviews the course" in r for r in area.reasons)


def test_the_testers_med_of_100_mid_course_blocks_for_a_work_up(store):
    p, a, c = _dosed(store, 900)
    store.add_med(p.id, "XTRAC", 100, TODAY)
    area = plan_next_session(store, LIB, c.id, TODAY, device_model="XTRAC").area(a.id)
    assert area.target_dose_mj_cm2 is None and any("photosensitivity work-up" in r for r in area.reasons)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(last=st.integers(100, 3000), med=st.floats(130, 5000, allow_nan=False),
       protocol_id=st.sampled_from(LIGHT_PROTOCOLS))
def test_no_dose_after_a_new_med_exceeds_its_first_dose_bound(tmp_path_factory, last, med, protocol_id):
    with ClinicStore.open(tmp_path_factory.mktemp("m") / "t.sqlite3", training=True) as s:
        p, a, c = _dosed(s, last, protocol_id=protocol_id)
        s.add_med(p.id, "XTRAC", med, TODAY)
        area = plan_next_session(s, LIB, c.id, TODAY, device_model="XTRAC").area(a.id)
        if area.target_dose_mj_cm2 is not None:
            assert area.target_dose_mj_cm2 <= math.floor(0.7 * med)
            assert area.bounds["target_dose_mj_cm2"].maximum <= math.floor(0.7 * med)


# ---- 3: treatments and responses only on the session's course's areas ---------------------------------------------
def test_treatments_responses_and_overrides_on_another_patients_area_are_refused(store):
    p, a, c = _course(store)
    q, b, d = _course(store, pseudo="CX-E2")
    extra = store.add_area(p.id, "arm", "upper_arm" if "upper_arm" in _regions() else "neck", _lesion(COMBINED), 2,
                           "III")
    sid = store.add_session(c.id, TODAY)
    for area_id in (b.id, extra.id):
        for call in (lambda i=area_id: store.add_treatment(sid, Treatment(i, "light", dose_mj_cm2=100)),
                     lambda i=area_id: store.add_response(sid, Response(i, erythema_grade=1)),
                     lambda i=area_id: store.record_override(sid, i, "target_dose_mj_cm2", 200, 150, "r", "dr")):
            with pytest.raises(UserError, match="is not an area of session"):
                call()
    assert store.history(d.id) == [] and store.history(c.id)[0].treatments == ()


def _regions():
    from workstation.store.validate import factory_tables
    return factory_tables().needling.regions


# ---- 4: same place on correction, closed areas, session before the course ----------------------------------------
def test_moving_an_area_onto_a_region_with_another_open_area_needs_the_clinician(store):
    p, a, c = _course(store, region="face")
    b = store.add_area(p.id, "neck scar", "neck", _lesion(COMBINED), 2, "III")
    with pytest.raises(UserError, match="already has an area on the face"):
        store.correct_area(b.id, body_region="face", who="dr", reason="typed wrong")
    assert store.area(b.id).body_region == "neck"
    assert store.correct_area(b.id, body_region="face", who="dr", reason="typed wrong",
                              distinct_place=True).body_region == "face"


def test_a_course_on_a_closed_area_and_a_session_before_the_course_are_refused(store):
    p, a, c = _course(store)
    with pytest.raises(UserError, match="before the course's start"):
        store.add_session(c.id, c.started_on - timedelta(days=1))
    store.close_area(a.id, TODAY, who="dr", reason="done")
    with pytest.raises(UserError, match="closed on"):
        store.create_course(p.id, LIB.get(COMBINED), [a.id], TODAY)
    with pytest.raises(UserError, match="closed area is not changed"):
        store.correct_area(a.id, size_cm2=5, who="dr", reason="r")


# ---- 11 and 14: every public write, wrong types and values, in words ----------------------------------------------
def _writes(s, p, a, c, sid):
    proto = LIB.get(COMBINED)
    return {
        "planned_sessions": lambda v: s.create_course(p.id, proto, [a.id], TODAY, planned_sessions=v),
        "interval_days": lambda v: s.create_course(p.id, proto, [a.id], TODAY, interval_days=v),
        "course areas": lambda v: s.create_course(p.id, proto, v, TODAY),
        "course date": lambda v: s.create_course(p.id, proto, [a.id], v),
        "session date": lambda v: s.add_session(c.id, v),
        "session course": lambda v: s.add_session(v, TODAY),
        "session model": lambda v: s.add_session(c.id, TODAY, device_model=v),
        "med value": lambda v: s.add_med(p.id, "XTRAC", v, TODAY),
        "med model": lambda v: s.add_med(p.id, v, 300, TODAY),
        "med date": lambda v: s.add_med(p.id, "XTRAC", 300, v),
        "med patient": lambda v: s.add_med(v, "XTRAC", 300, TODAY),
        "screening answer": lambda v: s.add_screening_answer(p.id, "porphyria", v, TODAY, "dr"),
        "screening item": lambda v: s.add_screening_answer(p.id, v, False, TODAY, "dr"),
        "screening date": lambda v: s.add_screening_answer(p.id, "porphyria", False, v, "dr"),
        "screening by": lambda v: s.add_screening_answer(p.id, "porphyria", False, TODAY, v),
        "area region": lambda v: s.add_area(p.id, "x", v, "atrophic_scar", 1, "III", distinct_place=True),
        "area lesion": lambda v: s.add_area(p.id, "x", "neck", v, 1, "III"),
        "area size": lambda v: s.add_area(p.id, "x", "neck", "atrophic_scar", v, "III"),
        "area skin": lambda v: s.add_area(p.id, "x", "neck", "atrophic_scar", 1, v),
        "area label": lambda v: s.add_area(p.id, v, "neck", "atrophic_scar", 1, "III"),
        "area distinct": lambda v: s.add_area(p.id, "x", "abdomen", "atrophic_scar", 1, "III", distinct_place=v),
        "correct size": lambda v: s.correct_area(a.id, size_cm2=v, who="dr", reason="r"),
        "correct region": lambda v: s.correct_area(a.id, body_region=v, who="dr", reason="r"),
        "correct reason": lambda v: s.correct_area(a.id, size_cm2=7, who="dr", reason=v),
        "close date": lambda v: s.close_area(a.id, v, who="dr", reason="r"),
        "dose": lambda v: s.add_treatment(sid, Treatment(a.id, "light", dose_mj_cm2=v)),
        "depth": lambda v: s.add_treatment(sid, Treatment(a.id, "needling", depth_mm=v)),
        "stroke rate": lambda v: s.add_treatment(sid, Treatment(a.id, "needling", stroke_rate_hz=v)),
        "passes": lambda v: s.add_treatment(sid, Treatment(a.id, "needling", passes=v)),
        "treatment area": lambda v: s.add_treatment(sid, Treatment(v, "light", dose_mj_cm2=100)),
        "grade": lambda v: s.add_response(sid, Response(a.id, erythema_grade=v)),
        "blistering": lambda v: s.add_response(sid, Response(a.id, blistering=v)),
        "pain": lambda v: s.add_response(sid, Response(a.id, pain_0_10=v)),
        "duration": lambda v: s.add_response(sid, Response(a.id, erythema_duration_h=v)),
        "band": lambda v: s.add_response(sid, Response(a.id, repigmentation_band=v)),
        "override value": lambda v: s.record_override(sid, a.id, "target_dose_mj_cm2", 200, v, "r", "dr"),
        "override proposed": lambda v: s.record_override(sid, a.id, "target_dose_mj_cm2", v, 200, "r", "dr"),
        "override field": lambda v: s.record_override(sid, a.id, v, 200, 150, "r", "dr"),
        "override reason": lambda v: s.record_override(sid, a.id, "target_dose_mj_cm2", 200, 150, v, "dr"),
        "override at": lambda v: s.record_override(sid, a.id, "target_dose_mj_cm2", 200, 150, "r", "dr", at=v),
    }


BAD_VALUES = st.one_of(
    st.just(float("nan")), st.just(float("inf")), st.just(-math.inf), st.just(-50), st.just(-0.5), st.just(0),
    st.just(2.5), st.just(10), st.just(""), st.just("  "), st.just("10"), st.just("no"), st.just([1]), st.just(["face"]),
    st.just(None), st.just(True), st.just(10**30), st.just(datetime(2026, 1, 1, 9, 0)), st.just(date(1800, 1, 1)),
    st.just(date(1900, 1, 1)), st.just(date(2099, 1, 1)), st.just("2099-01-01T00:00:00+00:00"), st.just("colour"),
    st.just("cheek"), st.just([7, 7]), st.just({}), st.just(b"x"), st.text(max_size=5), st.floats(), st.integers())

# Values a field accepts (so a bad-value draw that happens to be valid is not expected to fail).
GOOD = {"planned_sessions": lambda v: v is None or isinstance(v, int) and not isinstance(v, bool) and 6 <= v <= 20,
        "interval_days": lambda v: v is None or isinstance(v, int) and not isinstance(v, bool) and 7 <= v <= 14,
        "session model": lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "med model": lambda v: isinstance(v, str) and v.strip() != "",
        "med value": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 5000,
        "screening answer": lambda v: isinstance(v, bool),
        "screening by": lambda v: isinstance(v, str) and v.strip() != "",
        "area label": lambda v: isinstance(v, str) and v.strip() not in ("", "flank"),
        "area distinct": lambda v: v is True,
        "correct size": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 2000 and v != 4,
        "correct reason": lambda v: isinstance(v, str) and v.strip() != "",
        "correct region": lambda v: v is None,
        "dose": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 5000,
        "depth": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 2.5),
        "stroke rate": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                                               and 50 <= v <= 150),
        "passes": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 20),
        "grade": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v in range(5)),
        "blistering": lambda v: isinstance(v, bool),
        "pain": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v in range(11)),
        "duration": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                                            and 0 <= v <= 1440),
        "band": lambda v: v is None or v in ("0", "1-5", "6-25", "26-50", "51-75", "76-100"),
        "override value": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= 5000,
        "override proposed": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                                                     and 1 <= v <= 5000),
        "override reason": lambda v: isinstance(v, str) and v.strip() != "",
        "override at": lambda v: v is None,
        "course areas": lambda v: v == [1],
        "area size": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 2000}
_DATE_OK = lambda v: isinstance(v, date) and not isinstance(v, datetime) and date(2000, 1, 1) <= v <= TODAY  # noqa: E731
for _k in ("course date", "session date", "med date", "screening date", "close date"):
    GOOD[_k] = _DATE_OK


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(sorted(_writes(*([None] * 5)))), value=BAD_VALUES)
def test_every_public_write_refuses_wrong_types_and_values_in_words(tmp_path_factory, which, value):
    with ClinicStore.open(tmp_path_factory.mktemp("w") / "t.sqlite3", training=True) as s:
        p, a, c = _course(s)
        sid = s.add_session(c.id, TODAY)
        before = s.export_patient("CX-E1")
        try:
            _writes(s, p, a, c, sid)[which](value)
        except UserError as exc:
            msg = str(exc)
            assert "constraint" not in msg.lower() and "sqlite" not in msg.lower() and "Traceback" not in msg
            assert s.export_patient("CX-E1") == before
            return
        assert GOOD.get(which, lambda v: False)(value), f"{which} accepted {value!r}"


@pytest.mark.parametrize("which,value,words", [
    ("planned_sessions", float("nan"), "planned sessions must be a whole number"),
    ("planned_sessions", "10", "planned sessions must be a whole number"),
    ("interval_days", 2.5, "interval between sessions must be a whole number"),
    ("course areas", None, "list of record numbers"),
    ("blistering", "no", "blistering answer must be yes or no"),
    ("screening answer", "no", "must be yes or no"),
    ("override value", float("nan"), "overridden target dose mj cm2 is nan"),
    ("override value", -50, "is -50"),
    ("override field", "colour", "'colour' cannot be overridden"),
    ("override reason", "", "reason for the override must be some text"),
    ("override at", "2099-01-01T00:00:00+00:00", "after today"),
    ("session date", datetime(2026, 1, 1, 9, 0), "must be a calendar date"),
    ("session date", date(1900, 1, 1), "before 2000-01-01"),
    ("med date", date(1800, 1, 1), "before 2000-01-01"),
    ("area region", ["face"], "body region must be a name"),
    ("stroke rate", 10, "stroke rate is 10 Hz; it must be 50–150 Hz"),
])
def test_the_testers_inputs_are_refused_in_words(store, which, value, words):
    p, a, c = _course(store)
    sid = store.add_session(c.id, TODAY)
    with pytest.raises(UserError) as exc:
        _writes(store, p, a, c, sid)[which](value)
    assert words.lower() in str(exc.value).lower(), str(exc.value)


def test_duplicate_area_ids_in_a_course_are_refused(store):
    p, a, c = _course(store)
    with pytest.raises(UserError, match="lists an area twice"):
        store.create_course(p.id, LIB.get(COMBINED), [a.id, a.id], TODAY)


# ---- 14: scar kind must fit the lesion; a PIH scar kind blocks UV --------------------------------------------------
@pytest.mark.parametrize("lesion", ["striae_alba", "hypopigmented_scar", "hypopigmented_atrophic_scar"])
def test_a_pih_scar_kind_on_a_uv_lesion_is_refused(store, lesion):
    p = store.create_patient("CX-K1")
    with pytest.raises(UserError, match="does not fit a"):
        store.add_area(p.id, "x", "abdomen", lesion, 4, "V", scar_kind="pih_mark")
    a = store.add_area(p.id, "x", "abdomen", lesion, 4, "V")
    with pytest.raises(UserError, match="does not fit a"):
        store.correct_area(a.id, scar_kind="pih_mark", who="dr", reason="r")


def test_a_stored_pih_scar_kind_blocks_uv_in_the_engine():
    from workstation.dose import plan_session
    from workstation.store import Area, Course
    proto = LIB.get("striae-alba-light")
    area = Area(1, 1, "x", "abdomen", "striae_alba", 4.0, "V", scar_kind="pih_mark")
    course = Course(1, 1, proto.id, proto.version, proto.course.sessions, proto.course.interval_days, TODAY, (1,))
    plan = plan_session(protocol=proto, tables=LIB.tables, course=course, areas=[area], history=[], screening=[],
                        visit_date=TODAY)
    assert plan.area(1).target_dose_mj_cm2 is None
    assert any("scar kind pih_mark" in r for r in plan.area(1).reasons)


def test_a_treatment_stored_on_another_patients_area_before_the_check_does_not_count(store):
    p, a, c = _course(store)
    q, b, d = _course(store, pseudo="CX-E2")
    sid = store.add_session(d.id, TODAY - timedelta(days=7), device_model="XTRAC")
    # written around the API, as an older version allowed (a light row carries its session's date since issue 17)
    with store.transaction() as conn:
        conn.execute("INSERT INTO treatments (session_id, area_id, modality, dose_mj_cm2, light_on) "
                     "VALUES (?, ?, 'light', ?, ?)", (sid, a.id, 900.0, (TODAY - timedelta(days=7)).isoformat()))
    plan = plan_next_session(store, LIB, d.id, TODAY, device_model="XTRAC")
    assert plan.uv_record["patient"] == {"dose_mj_cm2": 0.0, "exposures": 0}
    assert plan_next_session(store, LIB, c.id, TODAY, device_model="XTRAC").uv_record["patient"]["exposures"] == 0


def test_no_record_is_dated_before_the_patients_birth_and_the_date_is_not_repeated(tmp_path):
    from workstation.store import Identity
    with ClinicStore.open(tmp_path / "c.sqlite3", training=False) as s:
        p = s.create_patient("CX-B1", Identity("Smith", "John", date(2010, 3, 4)))
        for call in (lambda: s.add_med(p.id, "XTRAC", 300, date(2009, 1, 1)),
                     lambda: s.add_screening_answer(p.id, "porphyria", False, date(2009, 1, 1), "dr")):
            with pytest.raises(UserError) as exc:
                call()
            assert "before the patient's birth date on file" in str(exc.value) and "2010" not in str(exc.value)
        s.add_med(p.id, "XTRAC", 300, date(2010, 3, 4))
        assert len(s.meds(p.id)) == 1
