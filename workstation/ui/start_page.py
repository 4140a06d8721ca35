"""The first page: Clinical (real devices on serial ports), Simulation (a training patient from a scenario, emulated
devices) or Replay (a recording)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.protocols.library import seeds_dir


def scenario_files() -> list[Path]:
    return sorted((seeds_dir() / "scenarios").glob("*.toml"))


class StartPage(QWidget):
    def __init__(self, on_clinical: Callable[[dict[str, str], str], None], on_simulation: Callable[[Path], None],
                 on_replay: Callable[[Path], None], parent: QWidget | None = None, *,
                 recordings_dir: Path | None = None) -> None:
        super().__init__(parent)
        self.recordings_dir = recordings_dir  # the recordings folder in force (settings), where Browse… starts
        self._on_clinical, self._on_simulation, self._on_replay = on_clinical, on_simulation, on_replay

        clinical = QGroupBox("Clinical — real devices")
        self.operator = QLineEdit()
        self.operator.setObjectName("operator")
        self.operator.setPlaceholderText("your operator id, e.g. dr-a")
        self.light_port = QLineEdit()
        self.light_port.setObjectName("light_port")
        self.light_port.setPlaceholderText("/dev/ttyUSB0")
        self.pen_port = QLineEdit()
        self.pen_port.setObjectName("pen_port")
        self.pen_port.setPlaceholderText("/dev/ttyUSB1")
        self.clinical_button = QPushButton("Connect the devices")
        self.clinical_button.setObjectName("clinical_button")
        self.clinical_button.clicked.connect(self.choose_clinical)
        form = QFormLayout(clinical)
        form.addRow("Operator", self.operator)
        form.addRow("Light (UVB handpiece) port", self.light_port)
        form.addRow("Pen (microneedling) port", self.pen_port)
        form.addRow(self.clinical_button)

        simulation = QGroupBox("Simulation — training on emulated devices")
        self.scenario = QComboBox()
        self.scenario.setObjectName("scenario_choice")
        for path in scenario_files():
            self.scenario.addItem(path.stem.replace("-", " "), str(path))
        self.simulation_button = QPushButton("Start with a training patient")
        self.simulation_button.setObjectName("simulation_button")
        self.simulation_button.clicked.connect(self.choose_simulation)
        sim = QFormLayout(simulation)
        sim.addRow("Scenario", self.scenario)
        sim.addRow(self.simulation_button)

        replay = QGroupBox("Replay — a recorded session (read-only)")
        self.replay_path = QLineEdit()
        self.replay_path.setObjectName("replay_path")
        where = f"{recordings_dir}/" if recordings_dir is not None else ""
        self.replay_path.setPlaceholderText(f"{where}YYYY-MM-DD/….h5")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        self.replay_button = QPushButton("Open recording")
        self.replay_button.setObjectName("replay_button")
        self.replay_button.clicked.connect(self.choose_replay)
        row = QHBoxLayout()
        row.addWidget(self.replay_path, 1)
        row.addWidget(browse)
        rep = QVBoxLayout(replay)
        rep.addLayout(row)
        rep.addWidget(self.replay_button)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h1>Cicatrix</h1><p>Choose how to work today.</p>"))
        for box in (clinical, simulation, replay):
            layout.addWidget(box)
        layout.addStretch(1)

    def choose_clinical(self) -> None:
        ports = {name: edit.text().strip() for name, edit in (("light", self.light_port), ("pen", self.pen_port))
                 if edit.text().strip()}
        self._on_clinical(ports, self.operator.text())

    def choose_simulation(self) -> None:
        self._on_simulation(Path(self.scenario.currentData() or ""))

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a recording", str(self.browse_folder()),
                                              "Recordings (*.h5);;All (*)")
        if path:
            self.replay_path.setText(path)

    def browse_folder(self) -> Path:
        """Where Browse… opens: the recordings folder in force if it exists, else the home folder."""
        if self.recordings_dir is not None and self.recordings_dir.is_dir():
            return self.recordings_dir
        return Path.home()

    def choose_replay(self) -> None:
        self._on_replay(Path(self.replay_path.text().strip()))
