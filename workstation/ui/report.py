"""The session report as a PDF, with Qt's own writer (QPdfWriter): the numbers as text, then pictures of the plots.

`write_report` touches no widget: the pictures are grabbed on the GUI thread beforehand, so the file can be written on
a worker thread and the window never waits on the disk.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QMarginsF, QRectF, Qt
from PyQt6.QtGui import QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

RESOLUTION_DPI = 150


def write_report(path: Path, title: str, lines: list[str], images: list[QImage]) -> Path:
    """Write `title`, `lines` (one paragraph each; "## " starts a heading) and `images` to an A4 PDF at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = QPdfWriter(str(path))
    writer.setResolution(RESOLUTION_DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    writer.setTitle(title)
    writer.setCreator("Cicatrix workstation")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write the report {path}: check that the folder is writable")
    try:
        page = writer.pageLayout().paintRectPixels(RESOLUTION_DPI)
        width, height = float(page.width()), float(page.height())
        y = 0.0

        def ensure(space: float) -> None:
            nonlocal y
            if y + space > height and y > 0:
                writer.newPage()
                y = 0.0

        def text(s: str, size: int, bold: bool = False) -> None:
            nonlocal y
            font = QFont("Sans Serif", size)
            font.setBold(bold)
            painter.setFont(font)
            flags = int(Qt.TextFlag.TextWordWrap)
            rect = painter.boundingRect(QRectF(0, 0, width, height), flags, s)
            ensure(rect.height())
            painter.drawText(QRectF(0, y, width, rect.height()), flags, s)
            y += rect.height() + size * 0.4

        text(title, 16, bold=True)
        for line in lines:
            if line.startswith("## "):
                y += 8
                text(line[3:], 12, bold=True)
            else:
                text(line, 9)
        for image in images:
            if image.isNull():
                continue
            h = width * image.height() / max(1, image.width())
            if h > height:
                h = height
            ensure(h)
            painter.drawImage(QRectF(0, y, width, h), image)
            y += h + 10
    finally:
        painter.end()
    return path
