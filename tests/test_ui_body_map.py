"""The body map on the patient page: each area drawn on its region (front or back), coloured by lesion type, PIH
ringed; a click on an area selects it in the list (and loads it into the form)."""

from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt

from workstation.ui.body_map import REGION_PLACES, BodyMap, MapArea
from workstation.ui.wording import LESION_COLORS


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
    assert set(REGION_PLACES) >= {"face", "back", "abdomen", "thighs", "neck"}
