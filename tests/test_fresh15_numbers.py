"""Fresh tester's findings on issue 15, items 1-3: the newest MED (by date, then insertion id) is the one the page
and the engine use, whatever order it is given in; an ambiguous comma is refused; messages show the number read in
full with its unit and quote what was typed."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pytest

from workstation.dose.light import med_on_file, newest_med
from workstation.errors import UserError
from workstation.store import MedMeasurement
from workstation.ui.numbers import exact, number_from_text

D = date(2026, 3, 2)


def test_newest_med_by_date_then_insertion_id_whatever_the_order():
    meds = [MedMeasurement("XTRAC", v, D, i) for i, v in enumerate((1.5, 250.0, 1.5, 300.0), start=1)]
    meds.append(MedMeasurement("XTRAC", 900.0, date(2026, 3, 1), 99))  # older day, higher id
    for order in itertools.permutations(meds):
        assert med_on_file(order, "xtrac").med_mj_cm2 == 300.0
        assert newest_med(order).med_mj_cm2 == 300.0
    assert med_on_file(meds, "other") is None and newest_med([]) is None


@pytest.mark.parametrize("typed,value", [("1,5", 1.5), ("1.5", 1.5), ("300", 300.0), (" 12,25 ", 12.25),
                                         ("1e3", 1000.0), (",5", 0.5)])
def test_numbers_read(typed, value):
    assert number_from_text(typed, "MED", "mJ/cm²", "400") == value


@pytest.mark.parametrize("typed,words", [("1,500", "1500 or 1.5"), ("12,345,678", "12345678"),
                                         ("nan", "not “nan”"), ("inf", "not “inf”"), ("1.5,0", "not “1.5,0”"),
                                         ("abc", "not “abc”"), ("", "for example 400"), ("1_000", "not “1_000”")])
def test_numbers_refused_in_words(typed, words):
    with pytest.raises(UserError) as exc:
        number_from_text(typed, "MED", "mJ/cm²", "400")
    assert words in str(exc.value)


@pytest.mark.parametrize("value,text", [(99999, "99999 mJ/cm²"), (123456789, "123456789 mJ/cm²"),
                                        (5000.4, "5000.4 mJ/cm²"), (0.25, "0.25 mJ/cm²"), (float("nan"), "—")])
def test_exact_shows_enough_digits(value, text):
    assert exact(value, "mJ/cm²") == text


@pytest.mark.parametrize("lo,hi", [(0, 1.111), (0, 0.8332), (0, 108.9), (-3.3, 7.7), (0, 330 * 1.1), (99.6, 100.4)])
def test_report_axis_ticks_are_round(lo, hi):
    """Finding 15: the PDF's axes carry round ticks (1, 2, 2.5, 5 × 10^k), never 1.111 or 0.8332."""
    from workstation.ui.report import nice_ticks, tick_label

    lo2, hi2, ticks = nice_ticks(lo, hi)
    assert lo2 <= lo and hi2 >= hi and 3 <= len(ticks) <= 9
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** np.floor(np.log10(step))
    assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5))
    assert all(len(tick_label(t).replace("-", "").replace(".", "")) <= 4 for t in ticks)
