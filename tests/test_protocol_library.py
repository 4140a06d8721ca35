"""The protocol library: factory files load clean; every malformed file is reported by file, key and message."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from main import main
from workstation.protocols import LESION_TYPES, load_library, seeds_dir
from workstation.protocols.reader import Reader

FIXTURES = Path(__file__).parent / "fixtures_protocols"
GOOD = seeds_dir() / "protocols" / "atrophic-scar-needling.toml"


def test_factory_library_loads_without_errors():
    lib = load_library()
    assert lib.errors == []
    assert lib.tables is not None
    assert set(lib.protocols) >= {
        "hypopigmented-scar-light", "striae-alba-light", "atrophic-scar-needling",
        "hypopigmented-atrophic-scar-combined", "pih-prone-gentle-needling",
    }
    covered = {lesion for p in lib.protocols.values() for lesion in p.lesion_types}
    assert covered == set(LESION_TYPES)


def test_every_number_in_a_factory_protocol_is_cited():
    lib = load_library()
    for p in lib.protocols.values():
        data = tomllib.loads(p.path.read_text())
        for section in ("course", "light", "needling"):
            body = data.get(section, {})
            for key, value in body.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert p.source_for(f"{section}.{key}") is not None, (p.id, section, key)
        if p.light:
            assert p.source_for("light.cumulative_cap_mj_cm2").team_default


def test_get_unknown_protocol_is_a_user_error():
    from workstation.errors import UserError

    with pytest.raises(UserError, match="no protocol 'nope'"):
        load_library().get("nope")


def _good_text() -> str:
    return GOOD.read_text()


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (description, old text, new text, expected key, words expected in the message)
MALFORMED = [
    ("id with spaces", 'id = "atrophic-scar-needling"', 'id = "Atrophic Scar"', "id", "lower-case"),
    ("version text", "version = 1", 'version = "one"', "version", "whole number"),
    ("unknown lesion", 'lesion_types = ["atrophic_scar"]', 'lesion_types = ["acne"]', "lesion_types", "unknown"),
    ("empty modalities", 'modalities = ["needling"]', "modalities = []", "modalities", "empty"),
    ("typo key", "passes_max = 2\n", "passes_max = 2\npases = 1\n", "needling.pases", "not a known key"),
    ("depth choice", 'depth_choice = "lower"', 'depth_choice = "deep"', "needling.depth_choice", "one of"),
    ("rate above device", "stroke_rate_hz = 117", "stroke_rate_hz = 200", "needling.stroke_rate_hz", "outside"),
    ("passes over max", "passes = 2\n", "passes = 3\n", "needling.passes", "must not exceed"),
    ("uncited number", 'passes = "team-default"\n', "", "needling.passes", "no citation"),
    ("unknown source", 'passes = "team-default"', 'passes = "nobody"', "needling.cite.passes", "not in [[sources]]"),
    ("interval out of range", "interval_days = 28", "interval_days = 50", "course.interval_days", "must lie within"),
    ("needling interval below table", "min_interval_days = 28", "min_interval_days = 14",
     "needling.min_interval_days", "at least 28"),
    ("missing needling table", "[needling]\n", "[needling_]\n", "needling", "missing"),
    ("modalities missing", 'modalities = ["needling"]\n', "", "modalities", "missing"),
]


LIGHT = seeds_dir() / "protocols" / "hypopigmented-scar-light.toml"
STRIAE = seeds_dir() / "protocols" / "striae-alba-light.toml"
MALFORMED_LIGHT = [
    ("med_minus missing", "med_minus_mj_cm2 = 50\n", "", "light.med_minus_mj_cm2", "missing"),
    ("escalation above 20 %", "escalation_percent = 10", "escalation_percent = 25", "light.escalation_percent",
     "between 5 and 20"),
    ("cap not cited as team default", 'cumulative_cap_mj_cm2 = "team-default"', 'cumulative_cap_mj_cm2 = "photonet"',
     "light.cite.cumulative_cap_mj_cm2", "team default"),
    ("duplicate source key", 'key = "photonet"', 'key = "relume-seed"', "sources[", "another source"),
    ("source without citation", 'citation = "Photonet protocol / NHS Tayside: at least 48 h between treatments"',
     "", "sources[2].citation", "missing"),
    ("sessions above max", "sessions_max = 20", "sessions_max = 8", "course.sessions", "within"),
    ("unknown start method", 'start_method = "med_minus"', 'start_method = "guess"', "light.start_method", "one of"),
    ("light interval below table", "min_interval_days = 2\n", "min_interval_days = 1\n", "light.min_interval_days",
     "at least 2"),
    ("cite not a table", "[light.cite]\n", "[light.citations]\n", "light.citations", "not a known key"),
    ("needling table without modality", "[light]\n", "[needling]\ndepth_choice = \"lower\"\n\n[light]\n",
     "needling", "not in modalities"),
    ("cite of a missing number", 'min_interval_days = "photonet"\n',
     'min_interval_days = "photonet"\nfixed_start_mj_cm2 = "photonet"\n', "light.cite.fixed_start_mj_cm2",
     "not in [light]"),
]
MALFORMED_STRIAE = [
    ("bad skin type", 'repeat_dose_skin_types = ["I", "II"]', 'repeat_dose_skin_types = ["VII"]',
     "light.repeat_dose_skin_types", "unknown"),
    ("uncited rule", 'repeat_dose_skin_types = "flexsys-308"\n', "", "light.repeat_dose_skin_types", "no citation"),
]
CASES = ([(GOOD, *m) for m in MALFORMED] + [(LIGHT, *m) for m in MALFORMED_LIGHT]
         + [(STRIAE, *m) for m in MALFORMED_STRIAE])


@pytest.mark.parametrize("base,desc,old,new,key,words", CASES, ids=[c[1] for c in CASES])
def test_each_malformed_protocol_names_file_key_and_problem(tmp_path, base, desc, old, new, key, words):
    bad = tmp_path / "bad.toml"
    bad.write_text(_mutate(base.read_text(), old, new))
    shutil.copy(FIXTURES / "missing_title.toml", tmp_path / "other.toml")
    lib = load_library([tmp_path])
    mine = [e for e in lib.errors if e.path == bad]
    assert mine, f"{desc}: no error reported"
    assert any(e.key.startswith(key) and words in e.message for e in mine), [str(e) for e in mine]
    assert all(e.message.endswith(".") for e in mine)
    # the rest of the library still loads
    assert "atrophic-scar-needling" in lib.protocols and "striae-alba-light" in lib.protocols


def test_syntax_error_and_missing_key_fixtures():
    lib = load_library([FIXTURES])
    by_file = {e.path.name: e for e in lib.errors}
    assert "valid TOML" in by_file["bad_syntax.toml"].message
    assert by_file["missing_title.toml"].key == "title"
    assert "missing" in by_file["missing_title.toml"].message
    assert len(lib.protocols) == 5


def test_light_on_pih_lesion_is_rejected(tmp_path):
    text = (seeds_dir() / "protocols" / "hypopigmented-scar-light.toml").read_text()
    text = text.replace('id = "hypopigmented-scar-light"', 'id = "clinic-uv-on-pih"')
    text = text.replace('lesion_types = ["hypopigmented_scar"]', 'lesion_types = ["hypopigmented_scar", "pih"]')
    (tmp_path / "uv.toml").write_text(text)
    lib = load_library([tmp_path])
    assert "clinic-uv-on-pih" not in lib.protocols
    assert any(e.key == "lesion_types" and "never planned" in e.message for e in lib.errors)


def test_clinic_protocol_loads_and_cannot_shadow_a_factory_id(tmp_path):
    text = _good_text()
    (tmp_path / "same.toml").write_text(text)
    (tmp_path / "mine.toml").write_text(text.replace('id = "atrophic-scar-needling"', 'id = "clinic-atrophic"'))
    lib = load_library([tmp_path])
    assert lib.protocols["clinic-atrophic"].origin == "clinic"
    assert lib.protocols["atrophic-scar-needling"].origin == "factory"
    assert any(e.key == "id" and "already used" in e.message for e in lib.errors)


def test_broken_table_makes_tables_unusable_and_is_reported(tmp_path):
    shutil.copytree(seeds_dir(), tmp_path / "seeds")
    path = tmp_path / "seeds" / "tables" / "light_dosing.toml"
    path.write_text(path.read_text().replace("max_percent = 20", "max_percent = 35"))
    lib = load_library(seeds=tmp_path / "seeds")
    assert lib.tables is None
    assert any(e.path == path and e.key == "escalation.max_percent" for e in lib.errors)


def test_reader_rejects_bool_as_number():
    r = Reader(Path("x.toml"), {"a": True})
    assert r.number("a", 0, 10) is None
    assert "must be a number" in r.errors[0].message


def test_cli_check_factory_and_clinic_folder(tmp_path, capsys):
    assert main(["protocols", "check"]) == 0
    assert "5 protocols loaded, 0 errors." in capsys.readouterr().out
    assert main(["protocols", "check", str(FIXTURES)]) == 1
    out = capsys.readouterr().out
    assert "missing_title.toml: title: is missing" in out
    assert main(["protocols", "check", str(tmp_path / "absent")]) == 2
    assert "(given on the command line) does not exist" in capsys.readouterr().err
