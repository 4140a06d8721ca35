"""The dose engine against CLINICAL.md's numbers (table-driven) and its safety properties (hypothesis)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workstation.dose import SessionPlan, override, plan_next_session, plan_session
from workstation.errors import UserError
from workstation.protocols import LESION_TYPES, SKIN_TYPES, load_library
from workstation.store import (
    Area,
    ClinicStore,
    Course,
    MedMeasurement,
    Response,
    ScreeningAnswer,
    SessionRecord,
    Treatment,
)

LIB = load_library()
T = LIB.tables
D0 = date(2026, 3, 2)
ALL_NO = tuple(ScreeningAnswer(i.id, False, date(2026, 3, 1), "dr a") for i in T.screening)
HYPO, STRIAE, ATROPHIC = "hypopigmented-scar-light", "striae-alba-light", "atrophic-scar-needling"
COMBINED, PIH = "hypopigmented-atrophic-scar-combined", "pih-prone-gentle-needling"
LESION_OF = {HYPO: "hypopigmented_scar", STRIAE: "striae_alba", ATROPHIC: "atrophic_scar",
             COMBINED: "hypopigmented_atrophic_scar", PIH: "pih"}


def mk_area(area_id=1, region="abdomen", lesion="hypopigmented_scar", skin="III") -> Area:
    return Area(area_id, 1, f"area{area_id}", region, lesion, 4.0, skin)


def mk_course(protocol, area_ids=(1,), interval_days=None, planned=None) -> Course:
    return Course(1, 1, protocol.id, protocol.version, planned or protocol.course.sessions,
                  interval_days or protocol.course.interval_days, D0, tuple(area_ids))


def light(sid, day, dose, grade=0, blister=False, duration_h=None, area_id=1) -> SessionRecord:
    return SessionRecord(sid, 1, D0 + timedelta(days=day), "XTRAC", (Treatment(area_id, "light", dose_mj_cm2=dose),),
                         (Response(area_id, grade, blister, erythema_duration_h=duration_h),))


def needled(sid, day, area_id=1) -> SessionRecord:
    return SessionRecord(sid, 1, D0 + timedelta(days=day), "PEN",
                         (Treatment(area_id, "needling", depth_mm=1.0, stroke_rate_hz=117, passes=2),), ())


def plan(protocol, areas, history=(), day=0, screening=ALL_NO, course=None, **kw) -> SessionPlan:
    protocol = LIB.get(protocol) if isinstance(protocol, str) else protocol
    return plan_session(protocol=protocol, tables=T, course=course or mk_course(protocol, [a.id for a in areas]),
                        areas=areas, history=history, screening=screening, visit_date=D0 + timedelta(days=day),
                        **{"device_model": "XTRAC", **kw})


def dose_of(p: SessionPlan, area_id=1):
    return p.area(area_id).target_dose_mj_cm2


# ---- light: CLINICAL.md numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("skin,start", [("I", 130), ("II", 220), ("III", 260), ("IV", 330), ("V", 350), ("VI", 400)])
def test_start_dose_by_skin_type_jaad_table_iv(skin, start):
    p = plan(COMBINED, [mk_area(lesion="hypopigmented_atrophic_scar", skin=skin)])
    assert dose_of(p) == start
    assert p.area(1).bounds["target_dose_mj_cm2"].maximum == start
    assert any("Table IV" in r for r in p.area(1).reasons)


@pytest.mark.parametrize("protocol,meds,expected,words", [
    # Alexiades: MED − 50, never above 70 % of the MED (Photonet / Tayside): min(350, 280)
    (HYPO, [MedMeasurement("XTRAC", 400, D0)], 280, "70 % of the MED of 400"),
    (HYPO, [MedMeasurement("XTRAC", 1000, D0)], 700, "70 % of the MED of 1000"),
    (HYPO, [MedMeasurement("XTRAC", 150, D0)], 100, "50 mJ/cm² below the MED of 150"),
    (STRIAE, [MedMeasurement("XTRAC", 400, D0)], 200, "50 % of the MED"),            # JAAD: 50 % of MED
    (HYPO, [MedMeasurement("OTHER", 400, D0)], None, "does not carry"),              # MED per device model
    (HYPO, [], 260, "no MED is on file"),
    (HYPO, [MedMeasurement("XTRAC", 400, D0)], None, "device model of this session is not known"),
    (HYPO, [MedMeasurement("XTRAC", 30, D0)], None, "MED too low: photosensitivity work-up"),
    (HYPO, [MedMeasurement("XTRAC", 50, D0)], None, "MED too low"),    # issue 11: 50 → was 220
    (HYPO, [MedMeasurement("XTRAC", 60, D0)], None, "MED too low"),    # below the plausible floor of 130
    (COMBINED, [MedMeasurement("XTRAC", 250, D0)], 175, "70 % of the MED of 250"),      # issue 11: was 260
    (COMBINED, [MedMeasurement("XTRAC", 1000, D0)], 260, "within 70 % of the MED"),
    (STRIAE, [MedMeasurement("XTRAC", 1, D0)], None, "MED too low"),
])
def test_start_from_med(protocol, meds, expected, words):
    device = None if "not known" in words else "XTRAC"
    p = plan(protocol, [mk_area(lesion=LESION_OF[protocol])], meds=meds, device_model=device)
    assert dose_of(p) == expected
    assert any(words in r for r in p.area(1).reasons), p.area(1).reasons
    assert not any("mj/cm" in r for r in p.area(1).reasons)
    if expected is None:
        assert p.area(1).modality == "none" and not any("skin type III" in r for r in p.area(1).reasons)


# (history as (dose, grade, blister, duration_h, day), visit day, cleared, expected dose or None)
RESPONSE_CASES = [
    ("grade 0 escalates 10 %", [(300, 0, False, None, 0)], 7, False, 330),
    ("grade 1 holds", [(300, 1, False, None, 0)], 7, False, 300),
    ("grade 2 not cleared: no light", [(300, 2, False, None, 0)], 7, False, None),
    ("grade 2 cleared: -20 % (> 50)", [(300, 2, False, None, 0)], 7, True, 240),
    ("grade 2 cleared: -50 (> 20 %)", [(200, 2, False, None, 0)], 7, True, 150),
    ("erythema over 48 h counts as grade 2", [(300, 1, False, 60, 0)], 7, True, 240),
    ("blister not healed: no light", [(300, 1, True, None, 0)], 7, False, None),
    ("blister healed: -50 % (> 100)", [(300, 4, False, None, 0)], 7, True, 150),
    ("blister healed: -100 (> 50 %)", [(160, 3, False, None, 0)], 7, True, 60),
    ("hold after blister", [(300, 4, False, None, 0), (150, 0, False, None, 7)], 14, False, 150),
    ("no response recorded: hold", [(300, None, False, None, 0)], 7, False, 300),
    ("missed 1-2 weeks: -25 %", [(300, 0, False, None, 0)], 7 + 10, False, 225),
    ("missed 2-3 weeks: -50 %", [(300, 0, False, None, 0)], 7 + 18, False, 150),
    ("missed 3-4 weeks: restart", [(300, 0, False, None, 0)], 7 + 25, False, 260),
    ("missed 4-7 days: keep rule", [(300, 0, False, None, 0)], 7 + 6, False, 330),
]


@pytest.mark.parametrize("desc,hist,day,cleared,expected", RESPONSE_CASES, ids=[c[0] for c in RESPONSE_CASES])
def test_response_and_missed_session_rules(desc, hist, day, cleared, expected):
    history = [light(i + 1, d, dose, grade, blister, dur) for i, (dose, grade, blister, dur, d) in enumerate(hist)]
    p = plan(HYPO, [mk_area()], history, day=day, cleared_area_ids={1} if cleared else ())
    assert dose_of(p) == expected, p.area(1).reasons
    assert p.area(1).modality == ("none" if expected is None else "light")
    assert p.area(1).reasons and all(r.endswith((".", ")")) for r in p.area(1).reasons)


@pytest.mark.parametrize("region,skin,prev,expected,words", [
    ("face", "V", 990, 1000, "face cap"),                 # Harris & Scharf: 1000 mJ/cm² on the face
    ("abdomen", "I", 1900, 2000, "skin type I"),          # Table IV maximum, type I
    ("abdomen", "III", 2900, 3000, "skin type III"),
    ("abdomen", "V", 4900, 5000, "skin type V"),
])
def test_per_session_caps(region, skin, prev, expected, words):
    p = plan(HYPO, [mk_area(region=region, skin=skin)], [light(1, 0, prev)], day=7)
    assert dose_of(p) == expected
    assert any("Capped" in r and words in r for r in p.area(1).reasons)


def test_cumulative_cap_team_default():
    history = [light(i + 1, 7 * i, 2000) for i in range(9)] + [light(10, 63, 1900)]
    p = plan(HYPO, [mk_area(skin="V")], history, day=70)
    assert dose_of(p) == 100
    assert any("cumulative cap" in r and "team default" in r for r in p.area(1).reasons)
    p = plan(HYPO, [mk_area(skin="V")], [*history, light(11, 70, 100)], day=77)
    assert p.area(1).modality == "none"


def test_skin_types_one_and_two_repeat_each_dose_on_striae():
    area = mk_area(lesion="striae_alba", skin="II")
    first = plan(STRIAE, [area], [light(1, 0, 200)], day=7)
    assert dose_of(first) == 200 and any("Flexsys 308" in r for r in first.area(1).reasons)
    assert dose_of(plan(STRIAE, [area], [light(1, 0, 200), light(2, 7, 200)], day=14)) == 220
    assert dose_of(plan(STRIAE, [mk_area(lesion="striae_alba", skin="III")], [light(1, 0, 200)], day=7)) == 220


def test_escalation_never_above_20_percent_with_table_increments():
    proto = LIB.get(COMBINED)
    proto = dataclasses.replace(proto, light=dataclasses.replace(proto.light, escalation_method="skin_type_table"))
    area = mk_area(lesion="hypopigmented_atrophic_scar", skin="VI")
    assert dose_of(plan(proto, [area], [light(1, 0, 200)], day=7)) == 240       # +65 limited to 20 %
    assert dose_of(plan(proto, [area], [light(1, 0, 400)], day=8)) == 465       # +65 (16 %)


def test_after_blister_a_clinician_may_climb_by_half_steps_only_after_the_hold():
    history = [light(1, 0, 300, 4), light(2, 7, 150), light(3, 14, 150), light(4, 21, 150)]
    p = plan(HYPO, [mk_area()], history, day=28)
    assert dose_of(p) == 150
    assert p.area(1).bounds["target_dose_mj_cm2"].maximum == 157          # 150 + 5 % (half of the 10 % step)
    p2 = plan(HYPO, [mk_area()], history[:3], day=21)
    assert p2.area(1).bounds["target_dose_mj_cm2"].maximum == 150


# ---- needling ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol,region,lesion,skin,depth,lo,hi,passes", [
    (ATROPHIC, "face", "atrophic_scar", "III", 1.0, 1.0, 1.5, 2),
    (ATROPHIC, "forehead", "atrophic_scar", "II", 0.25, 0.25, 0.5, 2),
    (ATROPHIC, "bony", "atrophic_scar", "I", 0.25, 0.25, 0.5, 2),
    (ATROPHIC, "neck", "atrophic_scar", "III", 0.5, 0.5, 1.0, 2),
    (ATROPHIC, "thighs", "atrophic_scar", "III", 1.5, 1.5, 2.0, 2),
    (ATROPHIC, "face", "atrophic_scar", "IV", 1.0, 1.0, 1.0, 2),      # PIH-prone: 1.0 mm on the face
    (ATROPHIC, "back", "atrophic_scar", "VI", 1.5, 1.5, 1.5, 2),      # PIH-prone: 1.5 mm elsewhere
    (PIH, "face", "pih", "II", 1.0, 1.0, 1.0, 1),                     # PIH area: gentle limits whatever the type
    (PIH, "abdomen", "hyperpigmented_scar", "V", 1.5, 1.5, 1.5, 1),
])
def test_needling_depth_by_area_lesion_and_skin_type(protocol, region, lesion, skin, depth, lo, hi, passes):
    a = plan(protocol, [mk_area(region=region, lesion=lesion, skin=skin)]).area(1)
    assert a.modality == "needling"
    assert (a.depth_mm, a.bounds["depth_mm"].minimum, a.bounds["depth_mm"].maximum) == (depth, lo, hi)
    assert a.stroke_rate_hz == 117 and a.bounds["stroke_rate_hz"].minimum == 50
    assert a.bounds["stroke_rate_hz"].maximum == 150
    assert a.passes == passes and a.bounds["passes"].maximum == 2
    assert len(a.reasons) >= 3


@pytest.mark.parametrize("skin,choice,depth,hi", [("III", "lower", 1.5, 2.5), ("III", "middle", 2.0, 2.5),
                                                  ("III", "upper", 2.5, 2.5), ("V", "upper", 1.5, 1.5)])
def test_striae_depth_on_the_body(skin, choice, depth, hi):
    proto = LIB.get(ATROPHIC)
    proto = dataclasses.replace(proto, lesion_types=("striae_alba",),
                                needling=dataclasses.replace(proto.needling, depth_choice=choice))
    a = plan(proto, [mk_area(region="thighs", lesion="striae_alba", skin=skin)]).area(1)
    assert (a.depth_mm, a.bounds["depth_mm"].maximum) == (depth, hi)
    assert a.depth_mm <= 2.5


def test_pih_history_gives_the_gentler_plan_and_orbital_rim_is_never_needled():
    answers = tuple(a if a.item_id != "pih_history" else dataclasses.replace(a, answer=True) for a in ALL_NO)
    a = plan(ATROPHIC, [mk_area(region="face", lesion="atrophic_scar", skin="II")], screening=answers).area(1)
    assert a.pih_prone and a.bounds["depth_mm"].maximum == 1.0
    b = plan(ATROPHIC, [mk_area(region="periorbital", lesion="atrophic_scar")]).area(1)
    assert b.modality == "none" and any("orbital rim" in r for r in b.reasons)


# ---- PIH, order, screening, intervals ------------------------------------------------------------------------
def test_no_uv_on_pih_area_even_when_the_protocol_file_says_so():
    proto = dataclasses.replace(LIB.get(HYPO), lesion_types=("hypopigmented_scar", "pih", "hyperpigmented_scar"))
    p = plan(proto, [mk_area(1, lesion="pih"), mk_area(2, lesion="hyperpigmented_scar"), mk_area(3)])
    assert p.area(1).modality == p.area(2).modality == "none"
    assert any("never planned" in r for r in p.area(1).reasons)
    assert p.area(3).modality == "light"
    assert [s.area_id for s in p.steps] == [3]


def test_combined_visit_orders_light_before_needling_with_aftercare():
    areas = [mk_area(1, "face", "hypopigmented_atrophic_scar"), mk_area(2, "back", "hypopigmented_atrophic_scar")]
    p = plan(COMBINED, areas)
    assert [(s.modality, s.area_id) for s in p.steps] == [("light", 1), ("light", 2), ("needling", 1),
                                                          ("needling", 2)]
    assert any("24–48 h" in s for s in p.aftercare) and any("72 h" in s for s in p.aftercare)
    assert any("Light first" in n for n in p.notes)
    for a in p.areas:                     # a sentence for every number
        assert any(f"{a.target_dose_mj_cm2:g} mJ/cm²" in r for r in a.reasons)
        assert any(r.startswith(f"Depth {a.depth_mm:g} mm") for r in a.reasons)
        assert any(r.startswith(f"Stroke rate {a.stroke_rate_hz:g} Hz") for r in a.reasons)
        assert any(r.startswith(f"{a.passes} pass") for r in a.reasons)
    assert any("Screening answers on file date from 2026-03-01" in n for n in p.notes)
    needling_only = plan(ATROPHIC, [mk_area(lesion="atrophic_scar")])
    assert not any("24–48 h" in s for s in needling_only.aftercare)


@pytest.mark.parametrize("protocol,history,day,first_day", [
    (HYPO, [light(1, 0, 300)], 1, 2),                             # at least 48 h between light treatments
    (ATROPHIC, [needled(1, 0)], 20, 28),                          # needling: 4 weeks (team default)
    (PIH, [needled(1, 0)], 30, 42),                               # PIH-prone: 6 weeks (team default)
])
def test_too_early_is_refused_with_the_first_allowed_date(protocol, history, day, first_day):
    area = mk_area(lesion=LESION_OF[protocol])
    p = plan(protocol, [area], history, day=day)
    assert p.refused and p.refusal.first_allowed_date == D0 + timedelta(days=first_day)
    # The date is the refusal's own field, printed once by each reader (not repeated inside the reason).
    assert (D0 + timedelta(days=first_day)).isoformat() not in p.refusal.reason
    assert all(a.modality == "none" for a in p.areas) and p.steps == ()
    assert not plan(protocol, [area], history, day=first_day).refused


def test_combination_rules_team_default():
    area = mk_area(region="back", lesion="hypopigmented_atrophic_scar")
    p = plan(COMBINED, [area], [needled(1, 0)], day=7)     # needled 7 days ago: no UV yet; needling too early
    assert p.refused and p.refusal.first_allowed_date == D0 + timedelta(days=8)
    assert plan(COMBINED, [area], [needled(1, 0)], day=8).area(1).modality == "light"
    hist = [light(1, 0, 300, grade=2)]                      # grade 2 erythema: no needling for 2 weeks
    p = plan(COMBINED, [area], hist, day=10, cleared_area_ids={1})
    assert p.area(1).modality == "light" and p.area(1).not_before["needling"] == D0 + timedelta(days=15)
    assert plan(COMBINED, [area], hist, day=15, cleared_area_ids={1}).area(1).modality == "both"


def test_screening_blocks_warnings_and_unanswered_items():
    yes = {"pregnancy", "anticoagulants"}
    answers = tuple(dataclasses.replace(a, answer=a.item_id in yes) for a in ALL_NO)
    p = plan(COMBINED, [mk_area(lesion="hypopigmented_atrophic_scar", skin="VI")], screening=answers)
    assert p.area(1).modality == "none"
    assert any("pregnant" in b for b in p.blocks) and any("anticoagulants" in w for w in p.warnings)
    assert any("skin type VI" in w for w in p.warnings)
    partial = tuple(a for a in ALL_NO if a.item_id != "porphyria")
    q = plan(COMBINED, [mk_area(lesion="hypopigmented_atrophic_scar")], screening=partial)
    assert q.area(1).modality == "needling" and any("not been answered" in b for b in q.blocks)


def test_full_repigmentation_suggests_stop_or_maintenance():
    done = dataclasses.replace(light(1, 0, 300), responses=(Response(1, 0, repigmentation_band="76-100"),))
    assert any("maintenance" in w for w in plan(HYPO, [mk_area()], [done], day=7).warnings)
    assert not any("maintenance" in w for w in plan(HYPO, [mk_area()], [light(1, 0, 300)], day=7).warnings)


def test_wrong_lesion_for_protocol_plans_nothing():
    a = plan(HYPO, [mk_area(lesion="atrophic_scar")]).area(1)
    assert a.modality == "none" and "not for atrophic scar" in a.reasons[0]


# ---- overrides and serialisation -----------------------------------------------------------------------------
def test_override_within_bounds_is_kept_with_reason():
    p = plan(HYPO, [mk_area()], [light(1, 0, 300)], day=7)
    a = override(p.area(1), "target_dose_mj_cm2", 310, "patient prefers gentler steps", "dr a")
    assert a.target_dose_mj_cm2 == 310 and a.overrides[0].proposed == 330 and a.overrides[0].who == "dr a"
    p2 = p.with_area(a)
    assert SessionPlan.from_dict(json.loads(p2.to_json())) == p2


def test_execution_steps_build_the_session_engines_steps():
    from workstation.session.session import Step

    areas = [mk_area(1, "face", "hypopigmented_atrophic_scar"), mk_area(2, "back", "hypopigmented_atrophic_scar")]
    p = plan(COMBINED, areas)
    p = p.with_area(override(p.area(2), "depth_mm", 1.6, "deep scar", "dr a"))
    steps = [Step(**spec) for spec in p.execution_steps()]
    assert [(s.modality, s.area_id) for s in steps] == [("light", "1"), ("light", "2"), ("needling", "1"),
                                                        ("needling", "2")]
    assert steps[0].target_dose_mj_cm2 == 260 and steps[0].area_dose_cap_mj_cm2 == 260
    assert (steps[3].depth_mm, steps[3].depth_limit_mm, steps[3].passes) == (1.6, 2.0, 2)


@pytest.mark.parametrize("field,value,reason,match", [
    ("target_dose_mj_cm2", 361, "why", "outside the allowed"),     # > +20 % of 300
    ("target_dose_mj_cm2", 0.5, "why", "outside the allowed"),
    ("target_dose_mj_cm2", 300, "  ", "Give a reason"),
    ("depth_mm", 1.0, "why", "not part of this plan"),
    ("exposure_s", 3, "why", "cannot be changed"),
    ("target_dose_mj_cm2", "lots", "why", "must be a number"),
])
def test_override_outside_bounds_is_refused(field, value, reason, match):
    p = plan(HYPO, [mk_area()], [light(1, 0, 300)], day=7)
    with pytest.raises(UserError, match=match):
        override(p.area(1), field, value, reason, "dr a")


def test_needling_override_respects_grid_and_pih_cap():
    a = plan(ATROPHIC, [mk_area(region="face", lesion="atrophic_scar", skin="III")]).area(1)
    assert override(a, "depth_mm", 1.25, "deeper scar", "dr a").depth_mm == 1.25
    for bad in (1.27, 1.55):
        with pytest.raises(UserError):
            override(a, "depth_mm", bad, "deeper scar", "dr a")
    gentle = plan(ATROPHIC, [mk_area(region="face", lesion="atrophic_scar", skin="V")]).area(1)
    with pytest.raises(UserError, match="1–1 mm"):
        override(gentle, "depth_mm", 1.05, "deeper scar", "dr a")
    with pytest.raises(UserError):
        override(gentle, "passes", 3, "more", "dr a")


def test_plan_next_session_from_store(tmp_path):
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        pat = s.create_patient()
        for a in ALL_NO:
            s.add_screening_answer(pat.id, a.item_id, False, a.answered_on, "dr a")
        area = s.add_area(pat.id, "left flank", "abdomen", "striae_alba", 12, "III")
        s.add_med(pat.id, "XTRAC", 500, D0)
        course = s.create_course(pat.id, LIB.get(STRIAE), [area.id], D0)
        first = plan_next_session(s, LIB, course.id, D0, device_model="XTRAC")
        assert first.area(area.id).target_dose_mj_cm2 == 250
        sid = s.add_session(course.id, D0, device_model="XTRAC", plan=first.to_dict())
        s.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=250))
        s.add_response(sid, Response(area.id, erythema_grade=0))
        nxt = plan_next_session(s, LIB, course.id, D0 + timedelta(days=7), device_model="XTRAC")
        assert nxt.area(area.id).target_dose_mj_cm2 == 275 and nxt.session_number == 2
        assert plan_next_session(s, LIB, course.id, D0 + timedelta(days=1)).refused


def test_sessions_of_another_course_on_the_same_area_count_for_intervals(tmp_path):
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        pat = s.create_patient()
        for a in ALL_NO:
            s.add_screening_answer(pat.id, a.item_id, False, a.answered_on, "dr a")
        area = s.add_area(pat.id, "flank", "back", "hypopigmented_scar", 6, "III")
        needle_course = s.create_course(pat.id, dataclasses.replace(LIB.get(ATROPHIC),
                                                                    lesion_types=("hypopigmented_scar",)),
                                        [area.id], D0)
        sid = s.add_session(needle_course.id, D0)
        s.add_treatment(sid, Treatment(area.id, "needling", depth_mm=1.5, stroke_rate_hz=117, passes=2))
        light_course = s.create_course(pat.id, LIB.get(HYPO), [area.id], D0)
        p = plan_next_session(s, LIB, light_course.id, D0 + timedelta(days=3), device_model="XTRAC")
        assert p.refused and p.refusal.first_allowed_date == D0 + timedelta(days=8)
        assert not plan_next_session(s, LIB, light_course.id, D0 + timedelta(days=8)).refused


def test_visit_before_last_session_is_a_user_error():
    with pytest.raises(UserError, match="before the last session"):
        plan(HYPO, [mk_area()], [light(1, 5, 300)], day=2)


# ---- properties ----------------------------------------------------------------------------------------------
def histories(modalities):
    event = st.tuples(
        st.integers(0, 40),                                 # days after the previous session
        st.sampled_from(modalities),
        st.integers(1, 5000),                               # delivered dose
        st.one_of(st.none(), st.integers(0, 4)),            # erythema grade
        st.booleans(),                                      # blistering
        st.one_of(st.none(), st.floats(0, 96)),             # erythema duration
    )
    return st.lists(event, max_size=8)


def build(events, area_id=1):
    out, day = [], 0
    for i, (gap, modality, dose, grade, blister, dur) in enumerate(events):
        day += gap
        if modality == "light":
            out.append(light(i + 1, day, dose, grade, blister, dur, area_id))
        else:
            out.append(SessionRecord(i + 1, 1, D0 + timedelta(days=day), "PEN",
                                     (Treatment(area_id, "needling", depth_mm=1.0, stroke_rate_hz=117, passes=1),),
                                     (Response(area_id, grade, blister),)))
    return out, day


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(events=histories(["light"]), skin=st.sampled_from(SKIN_TYPES), region=st.sampled_from(["face", "abdomen"]),
       gap=st.integers(0, 40), cleared=st.booleans(), protocol=st.sampled_from([HYPO, STRIAE]),
       med=st.one_of(st.none(), st.integers(1, 3000)))
def test_light_dose_never_exceeds_a_cap_and_never_rises_after_blistering(events, skin, region, gap, cleared,
                                                                         protocol, med):
    history, last_day = build(events)
    meds = [MedMeasurement("XTRAC", med, D0)] if med else []
    p = plan(protocol, [mk_area(region=region, lesion=LESION_OF[protocol], skin=skin)], history,
             day=last_day + gap, cleared_area_ids={1} if cleared else (), meds=meds)
    a = p.area(1)
    dose = a.target_dose_mj_cm2
    if dose is None:
        return
    rules = LIB.get(protocol).light
    delivered = sum(e[2] for e in events)
    b = a.bounds["target_dose_mj_cm2"]
    assert 1 <= dose <= 5000 and b.minimum <= dose <= b.maximum <= 5000
    for top in (b.maximum, dose):
        assert top <= T.light.by_skin_type[skin].max_mj_cm2
        assert top <= rules.cumulative_cap_mj_cm2 - delivered
        if region == "face":
            assert top <= T.light.face_max_mj_cm2
    lights = [e for e in events if e[1] == "light"]
    if any(e[4] or (e[3] or 0) >= 3 for e in lights):
        assert dose <= lights[-1][2]
    if lights and (lights[-1][4] or (lights[-1][3] or 0) >= 3):
        assert cleared
        assert dose <= lights[-1][2] - max(100, lights[-1][2] * 0.5)
    if lights and (lights[-1][3] or 0) >= 2 or (lights and (lights[-1][5] or 0) > 48):
        assert cleared and dose < lights[-1][2]


@FAST
@given(lesions=st.lists(st.sampled_from(LESION_TYPES), min_size=1, max_size=4),
       protocol=st.sampled_from(sorted(LESION_OF)), events=histories(["light", "needling"]),
       cleared=st.booleans(), gap=st.integers(0, 60))
def test_uv_never_lands_on_a_pih_area(lesions, protocol, events, cleared, gap):
    base = LIB.get(protocol)
    forced = dataclasses.replace(LIB.get(COMBINED), lesion_types=tuple(LESION_TYPES))   # a file that asks for UV
    for proto in (base, forced):
        areas = [mk_area(i + 1, "back", lesion) for i, lesion in enumerate(lesions)]
        history, last_day = build(events, area_id=1)
        p = plan(proto, areas, history, day=last_day + gap, cleared_area_ids={1} if cleared else ())
        for a in p.areas:
            if a.lesion_type in ("pih", "hyperpigmented_scar"):
                assert not a.has_light and a.target_dose_mj_cm2 is None
                assert all(s.area_id != a.area_id for s in p.steps if s.modality == "light")


@FAST
@given(events=histories(["light", "needling"]), gap=st.integers(0, 60), skin=st.sampled_from(SKIN_TYPES),
       protocol=st.sampled_from([COMBINED, HYPO, ATROPHIC, PIH]))
def test_interval_rule_holds_over_random_histories(events, gap, skin, protocol):
    proto = LIB.get(protocol)
    area = mk_area(region="back", lesion=LESION_OF[protocol], skin=skin)
    history, last_day = build(events)
    visit = last_day + gap
    p = plan(proto, [area], history, day=visit, cleared_area_ids={1})
    day_of = {m: [(s.session_date - D0).days for s in history if s.treatment(1, m)] for m in ("light", "needling")}
    a = p.area(1)
    if p.refused:
        first = (p.refusal.first_allowed_date - D0).days
        assert first > visit
        assert not plan(proto, [area], history, day=first, cleared_area_ids={1}).refused
        return
    needle_gap = 42 if (skin in ("IV", "V", "VI") or protocol == PIH) else 28
    if a.has_light:
        assert not day_of["light"] or visit - day_of["light"][-1] >= 2
        assert not day_of["needling"] or visit - day_of["needling"][-1] > 7
    if a.has_needling:
        assert not day_of["needling"] or visit - day_of["needling"][-1] >= needle_gap
        red = [(s.session_date - D0).days for s in history if s.treatment(1, "light")
               and (s.response(1).erythema_grade or 0) >= 2]
        assert not red or visit - red[-1] > 14


def test_an_area_reclassified_pih_mid_course_gets_no_uv_at_the_next_visit(tmp_path):
    """UV darkens skin (CLINICAL.md: excimer left transient hyperpigmentation in 24 %): when an area darkens during a
    light course the clinician reclassifies it, and the next plan gives it no UV, whatever the course's protocol."""
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        pat = s.create_patient()
        for a in ALL_NO:
            s.add_screening_answer(pat.id, a.item_id, False, a.answered_on, "dr a")
        darkened = s.add_area(pat.id, "left flank", "abdomen", "striae_alba", 12, "III")
        other = s.add_area(pat.id, "right flank", "abdomen", "striae_alba", 10, "III", distinct_place=True)
        course = s.create_course(pat.id, LIB.get(STRIAE), [darkened.id, other.id], D0)
        first = plan_next_session(s, LIB, course.id, D0)
        assert first.area(darkened.id).has_light and first.area(other.id).has_light
        sid = s.add_session(course.id, D0, plan=first.to_dict())
        for area in (darkened, other):
            s.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=first.area(area.id).target_dose_mj_cm2))
            s.add_response(sid, Response(area.id, erythema_grade=0))
        s.correct_area(darkened.id, lesion_type="pih", who="dr a", reason="darker than the skin around it at week 1")
        nxt = plan_next_session(s, LIB, course.id, D0 + timedelta(days=7))
        assert not nxt.area(darkened.id).has_light and nxt.area(darkened.id).target_dose_mj_cm2 is None
        assert any("never planned" in r for r in nxt.area(darkened.id).reasons)
        assert nxt.area(other.id).has_light  # the other area's course goes on
        assert all(step.area_id != darkened.id for step in nxt.steps if step.modality == "light")


def test_the_aftercare_follows_the_modalities_started_not_the_plan():
    """Third fresh tester of issue 12: after a session stopped before its needling step the aftercare still gave the
    needling advice (it followed the plan). It follows the steps that started; a step stopped part-way counts (it
    may have given some); a recorded plan from before the split, or one read from a damaged file, gives what it has."""
    from workstation.dose.plan import NOTHING_GIVEN_AFTERCARE, aftercare_for
    from workstation.session.outcome import started_modalities

    p = plan(COMBINED, [mk_area(1, "face", "hypopigmented_atrophic_scar")])
    always, light, needling = (list(T.aftercare[k]) for k in ("always", "light", "needling"))
    assert list(p.aftercare) == always + light + needling  # as planned, unchanged
    runs = [("light", "interrupted"), ("needling", "skipped")]
    assert p.aftercare_given(started_modalities(runs)) == always + light  # the light's "24–48 h", not "72 h"
    assert p.aftercare_given({"needling"}) == always + needling
    assert p.aftercare_given(set()) == [NOTHING_GIVEN_AFTERCARE]
    again = SessionPlan.from_dict(p.to_dict())  # as the recording keeps it
    assert again.aftercare_given({"light"}) == always + light
    older = {k: v for k, v in p.to_dict().items() if k != "aftercare_by_modality"}
    assert SessionPlan.from_dict(older).aftercare_given(set()) == list(p.aftercare)
    for damaged in ("text", ["a list"], {"always": "not a list", "light": [1, None]}, None):
        lines = aftercare_for(damaged, ["planned"], {"light"})
        assert all(isinstance(line, str) for line in lines), lines
