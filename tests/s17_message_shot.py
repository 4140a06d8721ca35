"""Run under Xvfb by tests/test_s17_message_bar.py: the window at its minimum size showing a lease refusal from a
real store, saved as a screenshot (argv[1]); prints the message area's geometry in the window as JSON."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

tmp = Path(tempfile.mkdtemp(prefix="cicatrix-shot-"))
for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
    os.environ[name] = str(tmp / name.lower())
sys.path.insert(0, str(Path(__file__).resolve().parent))

from PyQt6.QtWidgets import QApplication  # noqa: E402

app = QApplication([])

from test_s17_message_bar import _lease_refusal  # noqa: E402

from workstation.ui.main_window import MainWindow  # noqa: E402
from workstation.ui.screenshots import save  # noqa: E402

win = MainWindow(recordings_dir=tmp / "recordings", store_path=tmp / "store.sqlite3")
win.show()
win.resize(win.minimumSizeHint())
for _ in range(50):
    app.processEvents()
win.notify(_lease_refusal(tmp), "error")
for _ in range(50):
    app.processEvents()
save(win, Path(sys.argv[1]))
bar = win.message
top_left = bar.mapTo(win, bar.rect().topLeft())
print(json.dumps({"x": top_left.x(), "y": top_left.y(), "w": bar.width(), "h": bar.height(),
                  "one_line_px": win.message_bar.one_line_px, "shown": bar.text()}))
win.close()
