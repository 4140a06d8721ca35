"""Issue 11 item 5: a trainer scenario per new body region runs headless to its expected end, and the plan states the
expected response (scar kind and age) and the expected session time."""

from __future__ import annotations

from datetime import date

import pytest

from workstation.dose import plan_session
from workstation.protocols import load_library, seeds_dir
from workstation.session.runner import EXIT_COMPLETED, EXIT_OPERATOR, run_scenario
from workstation.session.scenario import load_scenario
from workstation.store import Area, Course, ScreeningAnswer

LIB = load_library()
SCENARIOS = seeds_dir() / "scenarios"


@pytest.mark.parametrize("name,region,code,words", [
    ("breast-reconstruction-light", "breast_chest", EXIT_COMPLETED, "No needling: blocked by screening"),
    ("upper-arm-striae-light", "upper_arm", EXIT_COMPLETED, "Start at 150 mJ/cm², 50 % of the MED of 300"),
    ("hand-atrophic-needling", "hand", EXIT_COMPLETED, "Depth 0.25 mm"),
    ("lower-leg-operator-stop", "lower_leg", EXIT_OPERATOR, "Start at 330 mJ/cm²"),
    ("lower-back-combined", "lower_back", EXIT_COMPLETED, "Depth 1.5 mm"),
])
def test_each_new_region_scenario_runs_to_its_expected_end(tmp_path, name, region, code, words):
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    assert scenario.areas[0].region == region and scenario.areas[0].scar_kind
    lines: list[str] = []
    result = run_scenario(scenario, tmp_path, out=lines.append)
    assert result.exit_code == code
    assert any(words in line for line in lines), lines
    assert lines[-1].startswith(f"outcome: {result.summary['state']}") and ", as expected;" in lines[-1]
    assert ("(stopped early)" in lines[-1]) == (scenario.expect != "completed")  # one vocabulary (v15 finding 14)


def test_every_factory_scenario_region_is_in_the_table_and_the_forearm_is_a_forearm():
    regions = LIB.tables.needling.regions
    for path in SCENARIOS.glob("*.toml"):
        assert all(a.region in regions for a in load_scenario(path).areas)
    unplug = load_scenario(SCENARIOS / "unplug-mid-exposure.toml").areas[0]
    assert unplug.region == "forearm"
    for new in ("breast_chest", "upper_arm", "forearm", "hand", "lower_leg", "lower_back"):
        assert new in regions
    ids = [i.id for i in LIB.tables.screening]
    assert "implant_or_expander" in ids and "irradiated_skin" in ids


def _plan(area: Area, protocol_id: str, **kw):
    p = LIB.get(protocol_id)
    screening = [ScreeningAnswer(i.id, False, date(2026, 3, 1), "dr") for i in LIB.tables.screening]
    course = Course(1, 1, p.id, p.version, p.course.sessions, p.course.interval_days, date(2026, 3, 2), (area.id,))
    return plan_session(protocol=p, tables=LIB.tables, course=course, areas=[area], history=[], screening=screening,
                        visit_date=date(2026, 3, 2), device_model="XTRAC", **kw)


@pytest.mark.parametrize("kind,age,words", [
    ("striae_rubra", 6, ["striae rubra", "newer marks respond best", "a newer scar, which responds best"]),
    ("striae_alba", 80, ["striae alba", "an older scar, which responds less"]),
    ("atrophic_deep", 30, ["deeper marks respond less", "neither new nor old"]),
    (None, 70, ["an older scar"]),
    ("atrophic_shallow", None, ["shallow marks respond best"]),
])
def test_the_plan_states_the_expected_response_by_scar_kind_and_age(kind, age, words):
    area = Area(1, 1, "flank", "abdomen", "striae_alba", 10.0, "III", age, kind)
    text = _plan(area, "striae-alba-light").area(1).expected_response
    assert all(w in text for w in words), text
    assert text.endswith(").")


def test_no_kind_or_age_means_no_expected_response_sentence():
    area = Area(1, 1, "flank", "abdomen", "striae_alba", 10.0, "III")
    assert _plan(area, "striae-alba-light").area(1).expected_response == ""


def test_the_plan_gives_the_expected_session_time():
    area = Area(1, 1, "cheek", "face", "hypopigmented_atrophic_scar", 6.0, "III")
    plan = _plan(area, "hypopigmented-atrophic-scar-combined")
    # 10 min set-up + 260 mJ/cm² ÷ 100 mW/cm² = 2.6 s + 60 s positioning + 2 passes × 6 cm² × 15 s = 180 s
    assert plan.expected_minutes == 14.0
    note = next(n for n in plan.notes if n.startswith("Expected session time"))
    assert "2.6" not in note and "3 s exposure (260 mJ/cm² at 100 mW/cm², the expected irradiance" in note
    assert "shorter than the 15–30 min a session lasts" in note
    calibrated = _plan(area, "hypopigmented-atrophic-scar-combined", irradiance_mw_cm2=20.0)
    assert calibrated.expected_minutes == 14.2 and "at the calibrated 20 mW/cm²" in " ".join(calibrated.notes)
    assert plan.to_dict()["expected_minutes"] == 14.0
