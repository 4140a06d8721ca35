"""A screenshot of the live window on emulated devices, taken on a real X server (Xvfb), saved for people to look at.

`main.py run --simulate --screenshot PNG` opens the window, waits until both devices have a few seconds of data,
reads the window back from the screen and quits. The PNG lands in artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOT = ROOT / "artifacts" / "screenshots" / "live_window_simulation.png"

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
    """How many pixels are close to a colour (a curve's pen)."""
    return int((np.abs(pixels.astype(int) - np.array(rgb)).sum(axis=2) <= tolerance).sum())


def test_live_window_screenshot_under_xvfb(qapp) -> None:
    from PyQt6.QtGui import QImage

    SHOT.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # the real xcb platform, on Xvfb
    proc = subprocess.run(
        [
            "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24",
            sys.executable, str(ROOT / "main.py"), "run", "--simulate", "--screenshot", str(SHOT),
        ],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "screenshot saved" in proc.stdout
    image = QImage(str(SHOT))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1400, 860)  # the whole window, not clipped by the screen
    pixels = rgb_array(image)
    # the pen needles at 100 strokes/s: its stroke-rate and motor-current curves are drawn in their colours
    assert color_pixels(pixels, (0x98, 0xC3, 0x79)) > 100  # stroke rate, green
    assert color_pixels(pixels, (0xD1, 0x9A, 0x66)) > 100  # motor current, orange
    assert color_pixels(pixels, (0xE0, 0x6C, 0x75)) > 20  # lamp temperature, red: the light reports while off
    assert color_pixels(pixels, (0x2E, 0x7D, 0x32)) > 10  # the green "connected" dots of the status lines
