"""Device roles from the drivers' kinds, the active channel from their declarations (live and recorded), and the
headless runner's exit code from the session's AbortCause (issue 16)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drivers.codes import AbortCause
from drivers.light import UVB308Light
from drivers.pen import MicroneedlingPen
from tests.conftest import wait_for
from tests.helpers_recording import write_session
from workstation.recording import Recording
from workstation.session import roles
from workstation.session.rig import Rig
from workstation.session.runner import EXIT_CODES
from workstation.session.session import Session, SessionError, State, Step


class Declared:
    """A device as the roles see it: what its driver declares, nothing else."""

    def __init__(self, driver):
        self.INFO, self.active_channel = driver.INFO, driver.active_channel


def test_roles_come_from_the_kind_whatever_the_names():
    devices = {"pen-a": Declared(MicroneedlingPen), "uv-2": Declared(UVB308Light)}
    assert roles.named_of_kind(devices, roles.LIGHT) == "uv-2"
    assert roles.named_of_kind(devices, roles.NEEDLING) == "pen-a"
    assert roles.named_of_kind({"pen-a": devices["pen-a"]}, roles.LIGHT) is None
    assert roles.light_first(devices) == ["uv-2", "pen-a"]
    assert roles.active_channels(devices) == {"pen-a": "running", "uv-2": "shutter_open"}


def test_active_flags_read_the_declared_channel_only():
    block = np.zeros(3, UVB308Light.BLOCK_DTYPE)
    block["shutter_open"] = [0, 1, 1]
    assert roles.active_flags(block, "shutter_open").tolist() == [False, True, True]
    assert roles.active_flags(block, "running") is None and roles.active_flags(block, None) is None


def test_a_recording_s_active_channel_comes_from_its_recorded_driver_declaration(tmp_path):
    with Recording.open(write_session(tmp_path, 0.1)) as rec:
        light, pen = rec.devices["light"], rec.devices["pen"]
        assert roles.recorded_of_kind(rec.devices, roles.NEEDLING) == "pen"
    assert roles.recorded_active_channel(light) == "shutter_open"
    assert roles.recorded_active_channel(pen) == "running"
    # a driver of that name is not installed here: the installed driver of the recorded kind declares it
    assert roles.recorded_active_channel(replace(light, driver_name="light-from-elsewhere")) == "shutter_open"
    # no driver of that kind, or telemetry without the channel: no active channel, nothing guessed
    assert roles.recorded_active_channel(replace(pen, driver_name="", driver_kind="laser")) is None
    assert roles.recorded_active_channel(replace(pen, dtype=np.dtype([("t_host_s", "f8")]))) is None


def test_one_exit_code_for_every_abort_cause():
    assert set(EXIT_CODES) == set(AbortCause)
    assert EXIT_CODES[AbortCause.NONE] == 0 and EXIT_CODES[AbortCause.BAD_INPUT] == 2
    assert EXIT_CODES[AbortCause.INTERLOCK] == EXIT_CODES[AbortCause.RECORDING] == 3
    assert EXIT_CODES[AbortCause.OPERATOR] == 4 and EXIT_CODES[AbortCause.DEVICE] == 5


@pytest.fixture
def sim():
    rig = Rig.simulation(seed=9, light_warmup_s=0.2)
    yield rig
    rig.close()


LIGHT_STEP = Step("1", "cheek", "light", target_dose_mj_cm2=300.0, area_dose_cap_mj_cm2=1000.0)


def test_the_session_finds_its_devices_by_kind_under_any_name(sim):
    """The rig's devices under other names: the session still knows which is the light and which the pen."""
    renamed = {"handpiece": sim.devices["light"], "needler": sim.devices["pen"]}
    session = Session(sim.bus, renamed, sim.monitor, operator_id="dr-test")
    try:
        assert (session.light, session.pen) == ("handpiece", "needler")
        session.connect("dr-test")
        session.load_plan([LIGHT_STEP], "dr-test")
        assert sim.device_of_kind(roles.LIGHT) is sim.devices["light"]
    finally:
        session.close()
    only_pen = Session(sim.bus, {"needler": sim.devices["pen"]}, sim.monitor)
    try:
        only_pen.connect("dr-test")
        with pytest.raises(SessionError, match="no light device"):
            only_pen.load_plan([LIGHT_STEP], "dr-test")
    finally:
        only_pen.close()


def test_a_device_failing_its_step_pauses_for_a_device_cause_and_an_operator_stop_is_the_operator_s(sim):
    session = Session(sim.bus, sim.devices, sim.monitor, operator_id="dr-test")
    try:
        session.connect("dr-test")
        session.load_plan([LIGHT_STEP], "dr-test")
        session.arm("dr-test")
        sim.devices["light"].close()  # the link is gone before the step's first command: a DeviceError
        result = session.run_step("dr-test")
        assert result.outcome == "interrupted" and result.note
        assert session.state == State.PAUSED and session.pause_cause == AbortCause.DEVICE
        session.operator_stop("dr-test")
        assert session.state == State.ABORTED and session.abort_cause == AbortCause.OPERATOR
        assert session.summary()["abort_cause"] == "operator"
    finally:
        session.close()


def test_an_interlock_abort_in_a_headless_session_is_an_interlock_cause(sim):
    session = Session(sim.bus, sim.devices, sim.monitor, operator_id="dr-test", abort_on_trip=True)
    try:
        session.connect("dr-test")
        session.load_plan([LIGHT_STEP], "dr-test")
        session.arm("dr-test")
        session.estop("test")
        wait_for(lambda: session.state == State.ABORTED, what="aborted by the trip")
        assert session.abort_cause == AbortCause.INTERLOCK and session.pause_cause == AbortCause.INTERLOCK
    finally:
        session.close()
