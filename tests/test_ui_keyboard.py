"""Keyboard order: Tab goes through each form in the order it reads (left to right, top to bottom)."""

from __future__ import annotations

from PyQt6.QtCore import Qt

from workstation.ui.main_window import MainWindow


def focus_chain(start, within) -> list:
    chain, w = [], start
    for _ in range(400):
        if within.isAncestorOf(w) and w.focusPolicy() & Qt.FocusPolicy.TabFocus and w not in chain:
            chain.append(w)
        w = w.nextInFocusChain()
        if w is start:
            break
    return chain


def test_patient_page_tab_order(window: MainWindow) -> None:
    p = window.patient
    chain = focus_chain(p.pseudonym, p)
    expected = [p.pseudonym, p.family_name, p.given_name, p.birth_date, p.med, p.area_label, p.region, p.lesion,
                p.size, p.skin, p.change_reason, p.protocol, p.courses]
    positions = [chain.index(w) for w in expected]
    assert positions == sorted(positions)


def test_plan_page_tab_order(window: MainWindow) -> None:
    v = window.plan_view
    chain = focus_chain(v.area_choice, v)
    expected = [v.area_choice, v.field_choice, v.value_edit, v.reason_edit, v.apply_button, v.start_button]
    positions = [chain.index(w) for w in expected]
    assert positions == sorted(positions)
