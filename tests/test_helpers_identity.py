"""The identity check the store, export and plan tests use finds every form of a leak and no chance fragment."""

from datetime import date

from helpers_identity import identity_shown

BORN = date(1990, 5, 6)


def test_every_form_of_the_identity_is_found() -> None:
    for text in ('{"dob": "1990-05-06"}', "born 06/05/1990", "19900506", '{"birth_year": 1990}', "born 1990.",
                 "Smithson", "tel 07700900123"):
        assert identity_shown(text, names=("Smithson",), born=BORN, contact="07700 900123"), text


def test_chance_fragments_are_not_a_leak() -> None:
    for text in ("3f2a1990-6c1e-4b8a-9d1e-0a1b2c3d4e5f", "1a2b-1990-77", "t=1764619902.5", "sha a19901b",
                 "CX-1990AB12"):
        assert identity_shown(text, names=("Smithson",), born=BORN, contact="07700 900123") == [], text
