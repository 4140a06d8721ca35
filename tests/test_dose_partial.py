"""A light session cut short (stopped, aborted, crashed) is never the previous dose the next escalation or reduction
starts from: the engine reckons from the last full dose the area received, or the protocol's start, and a reduction
never goes below the device minimum (CLINICAL.md: grade 3–4 → no light until healed, then −100 mJ/cm² or −50 %;
tester's finding 3 of issue 9). A session that delivered nothing is not counted in the session number."""

from __future__ import annotations

import re
from datetime import date, timedelta

from test_dose_engine import HYPO, dose_of, light, mk_area, plan

from workstation.dose.light import DEVICE_DOSE_MJ_CM2
from workstation.store import Response, SessionRecord, Treatment

D0 = date(2026, 3, 2)


def partial(sid: int, day: int, dose: float, planned: float, grade: int | None = 0, blister: bool = False,
            area_id: int = 1) -> SessionRecord:
    """A session whose plan targeted `planned` mJ/cm² on the area, of which `dose` was given."""
    return SessionRecord(sid, 1, D0 + timedelta(days=day), "XTRAC", (Treatment(area_id, "light", dose_mj_cm2=dose),),
                         (Response(area_id, grade, blister),), state="partial",
                         planned_light=((area_id, planned),))


def test_a_blister_after_a_short_first_exposure_reduces_from_the_protocol_start_not_the_partial_dose() -> None:
    assert dose_of(plan(HYPO, [mk_area()])) == 260  # the start for skin type III
    p = plan(HYPO, [mk_area()], [partial(1, 0, 41.41, 350, grade=4)], day=7, cleared_area_ids={1})
    reasons = " ".join(p.area(1).reasons)
    assert dose_of(p) == 130, reasons  # 260 (skin type III start) − max(100, 50 %) = 130
    assert "protocol's start, 260 mJ/cm²" in reasons and "-59" not in reasons and "below the device" not in reasons


def test_a_blister_after_a_short_exposure_reduces_from_the_last_full_dose() -> None:
    history = [light(1, 0, 300), partial(2, 7, 41.41, 330, grade=3)]
    p = plan(HYPO, [mk_area()], history, day=14, cleared_area_ids={1})
    assert dose_of(p) == 150, p.area(1).reasons  # 300 − max(100, 150)
    assert any("last full dose, 300 mJ/cm²" in r for r in p.area(1).reasons)


def test_no_erythema_after_a_short_exposure_escalates_from_the_last_full_dose() -> None:
    history = [light(1, 0, 300), partial(2, 7, 100, 330, grade=0)]
    assert dose_of(plan(HYPO, [mk_area()], history, day=14)) == 330  # +10 % of 300, not of 100


def test_a_full_dose_within_the_telemetry_rounding_counts_as_full() -> None:
    history = [partial(1, 0, 329.99, 330, grade=0)]
    assert dose_of(plan(HYPO, [mk_area()], history, day=7)) == 362  # 330 + 10 %, floored


def test_a_reduction_below_the_device_minimum_plans_no_light_in_words() -> None:
    dmin = DEVICE_DOSE_MJ_CM2[0]
    low = dmin + 20  # −100 mJ/cm² would go below the minimum: never a negative dose, never the same dose again
    p = plan(HYPO, [mk_area()], [light(1, 0, low, grade=4)], day=7, cleared_area_ids={1})
    reasons = " ".join(p.area(1).reasons)
    assert dose_of(p) is None and "leaves less than the device minimum" in reasons, reasons
    assert not re.search(r"\s[-−]\d", reasons)  # no negative dose in words


def test_a_session_that_delivered_nothing_is_not_counted_in_the_session_number() -> None:
    nothing = SessionRecord(1, 1, D0, "XTRAC", (), (), state="aborted")
    assert plan(HYPO, [mk_area()], [nothing], day=0).session_number == 1
    assert plan(HYPO, [mk_area()], [nothing, light(2, 0, 260)], day=7).session_number == 2



def test_the_store_gives_each_session_the_dose_its_plan_targeted(tmp_path) -> None:
    from workstation.dose import plan_next_session
    from workstation.protocols import load_library
    from workstation.store import ClinicStore

    lib = load_library()
    with ClinicStore.open(tmp_path / "s.sqlite3", training=True) as store:
        patient = store.create_patient("TRAIN-0900")
        for item in lib.tables.screening:
            store.add_screening_answer(patient.id, item.id, False, date.today(), "dr-a")
        area = store.add_area(patient.id, "left cheek", "face", "hypopigmented_scar", 6, "III")
        course = store.create_course(patient.id, lib.get(HYPO), [area.id], date.today())
        first = plan_next_session(store, lib, course.id, date.today(), device_model="UVB-308")
        sid = store.add_session(course.id, date.today(), plan=first.to_dict(), state="in_progress")
        store.journal_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=41.41))
        store.close_session(sid, "partial", "stopped by the operator")
        [record] = store.history(course.id)
        assert record.planned_light_mj_cm2(area.id) == first.area(area.id).target_dose_mj_cm2 > 41.41
        later = plan_next_session(store, lib, course.id, date.today() + timedelta(days=7), device_model="UVB-308")
        assert later.area(area.id).target_dose_mj_cm2 == first.area(area.id).target_dose_mj_cm2  # no response: hold
