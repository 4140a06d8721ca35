"""The body map on the patient page: each area drawn on its region (front or back), coloured by lesion type, PIH
ringed; a click on an area selects it in the list (and loads it into the form)."""

from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt

from workstation.ui.body_map import REGION_BOXES, BodyMap, MapArea
from workstation.ui.wording import LESION_COLORS, lesion_name


def test_areas_sit_on_their_region_and_a_click_selects(qtbot) -> None:
    m = BodyMap()
    qtbot.addWidget(m)
    m.resize(300, 280)
    m.show()
    qtbot.waitExposed(m)
    areas = [MapArea(1, "left cheek", "face", "hypopigmented_scar"), MapArea(2, "lower back", "back", "pih"),
             MapArea(3, "belly", "abdomen", "striae_alba"), MapArea(4, "belly 2", "abdomen", "atrophic_scar")]
    m.set_areas(areas)
    image = m.grab().toImage()
    face, back, belly, belly2 = (m.spot(i) for i in (1, 2, 3, 4))
    assert face.x() < m.width() / 2 < back.x()  # face on the front view, back on the back view
    assert face.y() < belly.y() and abs(belly.x() - belly2.x()) > 5  # two areas of one region side by side
    for area, spot in ((areas[0], face), (areas[2], belly)):
        color = image.pixelColor(int(spot.x()) + 4, int(spot.y()) + 4).name()
        expected = LESION_COLORS[area.lesion_type]
        assert sum(abs(int(color[i:i + 2], 16) - int(expected[i:i + 2], 16)) for i in (1, 3, 5)) < 40
    ring = image.pixelColor(int(back.x() + m._spots[1][1] + 3), int(back.y())).name()
    assert ring != "#ffffff"  # the PIH ring is drawn
    clicked = []
    m.area_clicked.connect(clicked.append)
    qtbot.mouseClick(m, Qt.MouseButton.LeftButton, pos=QPoint(int(back.x()), int(back.y())))
    assert clicked == [2] and m.selected == 2
    assert set(REGION_BOXES) >= {"face", "back", "abdomen", "thighs", "neck"}


def test_areas_of_one_region_stay_on_it_and_the_key_names_letters(qtbot):
    """v15 finding 11: four areas on the abdomen are drawn inside the abdomen (not on the arms); a key names the
    letters and colours."""
    m = BodyMap()
    qtbot.addWidget(m)
    m.resize(300, 420)
    m.show()
    areas = [MapArea(i, f"a{i}", "abdomen", "striae_alba" if i % 2 else "pih") for i in range(1, 5)]
    m.set_areas(areas)
    m.grab()  # paints, so the spots are laid out
    box = m._boxes()[0]
    _view, x0, y0, x1, y1 = REGION_BOXES["abdomen"]
    for a in areas:
        pt = m.spot(a.area_id)
        assert box.left() + x0 * box.width() <= pt.x() <= box.left() + x1 * box.width()
        assert box.top() + y0 * box.width() <= pt.y() <= box.top() + y1 * box.width()
    assert len({(round(m.spot(a.area_id).x()), round(m.spot(a.area_id).y())) for a in areas}) == 4
    assert len({round(m.spot(a.area_id).y()) for a in areas}) > 1  # a grid, not one row
    assert m.key_lines() == ["P = " + lesion_name("pih"), "S = " + lesion_name("striae_alba")]
    assert set(REGION_BOXES) >= {"breast_chest", "lower_back", "upper_arm", "forearm", "hand", "lower_leg"}
