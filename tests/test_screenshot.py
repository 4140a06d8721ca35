"""Screenshots of every page at 1280×800 and 1920×1080, taken on a real X server (Xvfb) and saved where CI keeps them
(artifacts/screenshots/), for people to look at: start, simulation (plan, treatment with an alarm, after the session),
replay of that session, clinical patient page with its body map, and its plan (on emulators standing in for the serial
devices)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
SIZES = ((1280, 800), (1920, 1080))

pytestmark = pytest.mark.skipif(
    shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None,
    reason="xvfb-run/Xvfb is not installed (apt-get install xvfb xauth); CI installs it",
)


def rgb_array(image) -> np.ndarray:
    from PyQt6.QtGui import QImage

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    ptr = rgb.constBits()
    ptr.setsize(rgb.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    return rows[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3).copy()


def color_pixels(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels are close to a colour (a banner, a curve's pen, an alarm)."""
    return int((np.abs(pixels.astype(int) - np.array(rgb)).sum(axis=2) <= tolerance).sum())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_screenshot_of_every_page_under_xvfb(qapp, size: tuple[int, int]) -> None:
    from PyQt6.QtGui import QImage

    from workstation.ui.screenshots import PAGES

    w, h = size
    names = [f"{page}-{w}x{h}" for page in PAGES]
    for name in names:
        (SHOTS / f"{name}.png").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # the real xcb platform, on Xvfb
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24",
         sys.executable, "-m", "workstation.ui.screenshots", str(SHOTS), f"{w}x{h}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pixels = {}
    for page, name in zip(PAGES, names, strict=True):
        image = QImage(str(SHOTS / f"{name}.png"))
        assert not image.isNull(), name
        assert (image.width(), image.height()) == (w, h), name  # the whole window, not clipped
        pixels[page] = rgb_array(image)
    orange, blue, green = (0xEF, 0x6C, 0x00), (0x15, 0x65, 0xC0), (0x2E, 0x7D, 0x32)
    for page in PAGES[:5]:
        assert color_pixels(pixels[page], orange if "replay" not in page else blue, 10) > 15_000, page  # banner
    for page in ("06-clinical-patient", "07-clinical-plan"):
        assert color_pixels(pixels[page], green, 10) > 15_000, page
    treatment = pixels["03-simulation-treatment"]
    assert color_pixels(treatment, (0xC6, 0x28, 0x28), 10) > 10_000  # the big red STOP
    assert color_pixels(treatment, (0xD3, 0x2F, 0x2F), 10) > 1_000  # the high alarm and its interlock light
    assert color_pixels(treatment, (0x98, 0xC3, 0x79)) > 50  # the pen's stroke-rate curve
    assert color_pixels(pixels["05-replay"], (0xE8, 0xA3, 0x3D)) > 200  # irradiance replayed
    patient = pixels["06-clinical-patient"]
    assert color_pixels(patient, (0x7F, 0x3F, 0x00), 20) > 30  # the PIH area on the body map
    assert color_pixels(patient, (0x56, 0xB4, 0xE9), 20) > 30  # the striae area
