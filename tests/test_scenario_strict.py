"""Issue 11 item 3: a scenario file is read by the same strict reader as the protocols and tables, and every field
it declares is used."""

from __future__ import annotations

import pytest

from workstation.protocols import seeds_dir
from workstation.session.scenario import ScenarioError, load_scenario

SCENARIOS = seeds_dir() / "scenarios"
BASE = (SCENARIOS / "combined-uneventful.toml").read_text()
EVENT = '\n[[events]]\nat_s = 1.0\naction = "contact_lost"\ndevice = "light"\n'


def _load(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_scenario(path)


@pytest.mark.parametrize("old,new,key,words", [
    (EVENT, EVENT.replace("1.0", "nan"), "events[0].at_s", "not a finite number; give a number"),          # issue: fired at 0.055 s
    (EVENT, EVENT.replace("1.0", "inf"), "events[0].at_s", "not a finite number; give a number"),
    (EVENT, EVENT.replace("1.0", "-1"), "events[0].at_s", "between 0 and 3600"),
    (EVENT, EVENT.replace("1.0", '"1"'), "events[0].at_s", "must be a number"),
    (EVENT, EVENT + "value = 2\n", "events[0].value", "between 0 and 1"),
    (EVENT, EVENT.replace('device = "light"\n', ""), "events[0].device", "missing"),
    (EVENT, EVENT + "devcie = 1\n", "events[0].devcie", "not a known key"),
    ("skin_type = 3", "skin_type = 3\nmed_mj_cm2 = inf", "patient.med_mj_cm2", "not a finite number; give a number"),  # was OverflowError
    ("skin_type = 3", "skin_type = 3\nmed_mj_cm2 = nan", "patient.med_mj_cm2", "not a finite number; give a number"),
    ("skin_type = 3", "skin_type = 3\nmed_mj_cm2 = 0", "patient.med_mj_cm2", "between 1 and 5000"),
    ("skin_type = 3", "skin_type = 3\nscreening_yse = []", "patient.screening_yse", "not a known key"),
    ("skin_type = 3", "skin_type = 3\npih_histroy = true", "patient.pih_histroy", "not a known key"),
    ("skin_type = 3", "skin_type = 3\nscreening_yes = [\"pregnant\"]", "patient.screening_yes", "unknown value"),
    ("skin_type = 3", "skin_type = 7", "patient.skin_type", "between 1 and 6"),
    ("skin_type = 3", "skin_type = 3.0", "patient.skin_type", "whole number"),
    ('region = "face"', 'region = "cheek"', "areas[0].region", "one of"),
    ("size_cm2 = 6", "size_cm2 = nan", "areas[0].size_cm2", "not a finite number; give a number"),
    ("size_cm2 = 6", "size_cm2 = 6\nscar_kind = \"keloid\"", "areas[0].scar_kind", "one of"),
    ("size_cm2 = 6", "size_cm2 = 6\nscar_age_months = -3", "areas[0].scar_age_months", "between 0 and 1200"),
    ("pass_duration_s = 1.0", "pass_duration_s = inf", "session.pass_duration_s", "not a finite number; give a number"),
    ("light_warmup_s = 0.5", "light_warmup_s = -0.5", "session.light_warmup_s", "between 0 and 600"),
    ("seed = 1", "seed = 1\nsed = 2", "session.sed", "not a known key"),
    ('expect = "completed"', 'expect = "done"', "scenario.expect", "one of"),
    ('pseudonym = "TRAIN-0001"', 'pseudonym = "Jo"', "patient.pseudonym", "'Jo' is not a pseudonym: use 3–32"),
    ('pseudonym = "TRAIN-0001"', 'pseudonym = "Anna Smith"', "patient.pseudonym", "is not a pseudonym"),
    ('pseudonym = "TRAIN-0001"', 'pseudonym = "-TRAIN"', "patient.pseudonym", "starting with a letter or a digit"),
])
def test_bad_values_name_the_file_the_key_and_the_allowed_range(tmp_path, old, new, key, words):
    text = BASE + EVENT if old == EVENT or EVENT in new else BASE
    assert old in text
    with pytest.raises(ScenarioError) as exc:
        _load(tmp_path, text.replace(old, new, 1))
    msg = str(exc.value)
    assert f"s.toml: {key}: " in msg and words in msg, msg


def test_several_problems_are_all_reported(tmp_path):
    text = BASE.replace("skin_type = 3", "skin_type = 9\npih_histroy = true").replace("seed = 1", "seed = -1")
    with pytest.raises(ScenarioError) as exc:
        _load(tmp_path, text)
    assert [line.split(": ")[1] for line in str(exc.value).splitlines()] == [
        "patient.skin_type", "session.seed", "patient.pih_histroy"]


def test_every_declared_field_reaches_the_scenario(tmp_path):
    text = BASE.replace("size_cm2 = 6", "size_cm2 = 6\nscar_kind = \"atrophic_deep\"\nscar_age_months = 30") + EVENT
    sc = _load(tmp_path, text.replace("skin_type = 3", "skin_type = 3\nmed_mj_cm2 = 250.5"))
    assert (sc.title, sc.expect, sc.pseudonym, sc.skin_type, sc.med_mj_cm2) == (
        "Hypopigmented atrophic scar, skin type III: combined visit, no incident", "completed", "TRAIN-0001", 3, 250.5)
    assert sc.description.startswith("The trainee watches")
    assert (sc.areas[0].area_id, sc.areas[0].region, sc.areas[0].scar_kind, sc.areas[0].scar_age_months) == (
        "left-cheek", "face", "atrophic_deep", 30)
    assert (sc.protocol_id, sc.operator_id, sc.pass_duration_s, sc.light_warmup_s, sc.seed) == (
        "hypopigmented-atrophic-scar-combined", "trainee-01", 1.0, 0.5, 1)
    assert [(e.at_s, e.action, e.device) for e in sc.events] == [(1.0, "contact_lost", "light")]


def test_pih_history_is_used_as_the_screening_answer(tmp_path):
    sc = _load(tmp_path, BASE.replace("skin_type = 3", "skin_type = 3\npih_history = true"))
    assert sc.pih_history and "pih_history" in sc.screening_yes
    with pytest.raises(ScenarioError, match="pih_history = true instead"):
        _load(tmp_path, BASE.replace("skin_type = 3", 'skin_type = 3\nscreening_yes = ["pih_history"]'))


def test_every_factory_scenario_loads_and_duplicate_labels_are_refused(tmp_path):
    for path in sorted(SCENARIOS.glob("*.toml")):
        assert load_scenario(path).areas
    area = BASE[BASE.index("[[areas]]"):BASE.index("[session]")]
    with pytest.raises(ScenarioError, match="areas\\[1\\].id: 'left-cheek' is used by another area"):
        _load(tmp_path, BASE.replace("[session]", area + "[session]"))
