"""Connecting a device: an identify that goes unanswered once (the workstation or the device held up for a moment
under load) is asked once more; a device that still does not answer, or whose link fails, is a device's failure
(exit 5), not bad input (exit 2) (fresh tester of the eleventh session: "light did not answer identify within 1 s",
exit 2, in about 7 of 25 loaded runs). Real drivers on real ptys against a scripted device."""

from __future__ import annotations

import pytest

from drivers.codes import AbortCause
from drivers.errors import CommandTimeout
from drivers.light import UVB308Light
from tests.hostile_device import IDENTIFY, HostileDevice
from workstation.bus import SessionBus
from workstation.session.outcome import EXIT_CODES
from workstation.session.rig import NotConnectedError, Rig


def test_an_identify_unanswered_once_is_asked_again_and_connects() -> None:
    dev = HostileDevice(unanswered_identifies=1).start()
    try:
        drv = UVB308Light(dev.port, bus=SessionBus(), command_timeout_s=0.3)
        ident = drv.connect()
        assert ident.serial_number and drv.connected
        assert [typ for _, typ, _, _ in dev.received].count(IDENTIFY) == 2
        drv.close()
    finally:
        dev.stop()


def test_a_device_that_never_answers_identify_fails_after_the_second_ask() -> None:
    dev = HostileDevice(unanswered_identifies=99).start()
    try:
        drv = UVB308Light(dev.port, bus=SessionBus(), command_timeout_s=0.3)
        with pytest.raises(CommandTimeout, match="did not answer identify"):
            drv.connect()
        assert [typ for _, typ, _, _ in dev.received].count(IDENTIFY) == 2
        assert not drv.connected
    finally:
        dev.stop()


def test_a_device_that_cannot_be_connected_is_a_device_failure_with_its_exit_status(monkeypatch) -> None:
    light, pen = HostileDevice(unanswered_identifies=99).start(), HostileDevice().start()
    monkeypatch.setattr(UVB308Light, "__init__", _short_timeout(UVB308Light.__init__))
    try:
        with pytest.raises(NotConnectedError, match="The light could not be connected: light did not answer") as e:
            Rig.clinical({"light": light.port, "pen": pen.port})
        assert e.value.exit_code == EXIT_CODES[AbortCause.DEVICE] == 5
    finally:
        light.stop()
        pen.stop()


def _short_timeout(init):
    def patched(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "command_timeout_s": 0.3})
    return patched


def test_a_start_refused_on_an_interlock_latched_before_it_says_which_and_where_it_is_recorded(tmp_path,
                                                                                          monkeypatch) -> None:
    """The light unplugged while the visit was planned (before the recording began): the refused start prints the
    trip that latched it and the recording's path, and the file says an interlock was latched before it began
    (fresh tester of the eleventh session: neither was said, and the file held three state rows)."""
    import time

    from workstation.protocols.library import seeds_dir
    from workstation.recording import Recording
    from workstation.session import visit as visit_module
    from workstation.session.runner import run_scenario
    from workstation.session.scenario import load_scenario

    real = visit_module.Visit.begin

    def unplugged_first(self, **kw):
        self.rig.emulators["light"].unplug()
        deadline = time.monotonic() + 20
        while "light" not in self.rig.monitor.tripped and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(self, **kw)

    monkeypatch.setattr(visit_module.Visit, "begin", unplugged_first)
    lines: list[str] = []
    result = run_scenario(load_scenario(seeds_dir() / "scenarios" / "upper-arm-striae-light.toml"), tmp_path,
                          out=lines.append)
    assert result.exit_code == EXIT_CODES[AbortCause.INTERLOCK], lines
    assert lines[-1] == "outcome: not started; exit code 3", lines
    assert any(line.startswith("  Connection interlock on the UV light") for line in lines), lines
    assert result.recording is not None and f"recording: {result.recording} (sha256 " in "\n".join(lines), lines
    with Recording.open(result.recording) as rec:
        said = [e for e in rec.events if e.kind == "alarm" and e.details.get("latched")]
    assert said and said[0].details["device"] == "light" and said[0].details["interlock"] == "disconnected", said
