"""Issue 11 items 6 and 7 (and the UV record): an area is a place on the body, once; a scenario run against a store
reuses the patient's area and course; a headless refusal prints the engine's reason."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from main import main
from workstation.dose import plan_next_session
from workstation.errors import UserError
from workstation.protocols import load_library, seeds_dir
from workstation.session.runner import run_scenario
from workstation.session.scenario import load_scenario
from workstation.store import ClinicStore, Response, Treatment

LIB = load_library()
SCENARIOS = seeds_dir() / "scenarios"
D0 = date.today() - timedelta(days=120)


def _quiet(_line: str) -> None:
    pass


def test_the_same_cheek_is_not_treated_twice_in_one_day(tmp_path, capsys):
    store = tmp_path / "s.sqlite3"
    args = ["session", "--simulate", "--scenario", str(SCENARIOS / "combined-uneventful.toml"), "--record",
            str(tmp_path / "rec"), "--store", str(store)]
    assert main(args) == 0
    capsys.readouterr()
    for _ in range(2):  # the issue ran it 25 times: each later run is refused, with the first allowed date
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "Too early: on area left-cheek" in err and "(first allowed " in err and err.count("first allowed") == 1
    with ClinicStore.open(store, training=True) as s:
        p = s.get_patient("TRAIN-0001")
        assert [a.label for a in s.areas(p.id)] == ["left-cheek"]
        assert len(s.courses(p.id)) == 1 and len(s.history(s.courses(p.id)[0].id)) == 1


def test_a_pih_area_under_a_light_protocol_prints_the_engines_reason(tmp_path):
    text = (SCENARIOS / "combined-uneventful.toml").read_text()
    text = text.replace('lesion = "hypopigmented_atrophic_scar"', 'lesion = "pih"')
    text = text.replace('protocol = "hypopigmented-atrophic-scar-combined"', 'protocol = "hypopigmented-scar-light"')
    path = tmp_path / "pih-light.toml"
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        run_scenario(load_scenario(path), tmp_path, out=_quiet)
    msg = str(exc.value)
    assert "nothing to treat" in msg
    assert "area left-cheek: No light: the area is classified PIH or hyperpigmented, and UV stimulates melanin" in msg


def test_an_med_too_low_is_the_headless_reason_too(tmp_path):
    text = (SCENARIOS / "combined-uneventful.toml").read_text().replace("skin_type = 3", "skin_type = 3\nmed_mj_cm2 = 1")
    text = text.replace('protocol = "hypopigmented-atrophic-scar-combined"', 'protocol = "hypopigmented-scar-light"')
    text = text.replace('lesion = "hypopigmented_atrophic_scar"', 'lesion = "hypopigmented_scar"')
    path = tmp_path / "low-med.toml"
    path.write_text(text)
    with pytest.raises(UserError, match="MED too low: photosensitivity work-up"):
        run_scenario(load_scenario(path), tmp_path, out=_quiet)


def _patient(s, areas):
    p = s.create_patient()
    for item in LIB.tables.screening:
        s.add_screening_answer(p.id, item.id, False, D0, "dr a")
    made = []
    for label, region in areas:
        made.append(s.add_area(p.id, label, region, "hypopigmented_scar", 4, "V", distinct_place=True))
    return p, made


def _light(s, course, day, dose, area):
    sid = s.add_session(course.id, D0 + timedelta(days=day))
    s.add_treatment(sid, Treatment(area.id, "light", dose_mj_cm2=dose))
    s.add_response(sid, Response(area.id, erythema_grade=0))


def test_interval_and_same_day_rules_count_every_treatment_on_the_region(tmp_path):
    proto = LIB.get("hypopigmented-scar-light")
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        p, (left, right) = _patient(s, [("left cheek", "face"), ("right cheek", "face")])
        c1 = s.create_course(p.id, proto, [left.id], D0)
        c2 = s.create_course(p.id, proto, [right.id], D0)
        _light(s, c1, 10, 300, left)
        same_day = plan_next_session(s, LIB, c2.id, D0 + timedelta(days=10))
        assert same_day.refused and "light needs 2 days" in same_day.refusal.reason
        later = plan_next_session(s, LIB, c2.id, D0 + timedelta(days=12))
        assert later.area(right.id).has_light


def test_the_cumulative_cap_counts_every_course_on_the_place_and_the_plan_shows_the_uv_record(tmp_path):
    proto = LIB.get("hypopigmented-scar-light")  # cumulative cap 20000 mJ/cm² (team default)
    with ClinicStore.open(tmp_path / "t.sqlite3", training=True) as s:
        p, (flank, neck) = _patient(s, [("flank", "abdomen"), ("neck", "neck")])
        old = s.create_course(p.id, proto, [flank.id], D0)
        for i in range(8):
            _light(s, old, 7 * i, 2475, flank)  # 19800 mJ/cm² in the first course
        _light(s, s.create_course(p.id, proto, [neck.id], D0), 3, 500, neck)
        new = s.create_course(p.id, proto, [flank.id], D0 + timedelta(days=70))
        plan = plan_next_session(s, LIB, new.id, D0 + timedelta(days=70))
        a = plan.area(flank.id)
        assert a.target_dose_mj_cm2 == 200  # what remains of 20000 after 19800 in the earlier course (not 350)
        assert any("what remains of the cumulative cap" in r for r in a.reasons)
        assert plan.uv_record["areas"][str(flank.id)] == {"dose_mj_cm2": 19800.0, "exposures": 8}
        assert plan.uv_record["patient"] == {"dose_mj_cm2": 20300.0, "exposures": 9}
        assert any(w.startswith("UV record, area flank: 20000 mJ/cm² in 9 exposures") and "team default" in w
                   for w in plan.warnings), plan.warnings
        assert plan.to_dict()["uv_record"]["patient"]["exposures"] == 9
