"""The stretches of a device's telemetry that a recording says its recorder lost, for a tool that judges the samples
(`main.py audit`: workstation/session/audit.py, the one user).

Each row of a device's `losses` dataset is samples the recorder received and the file does not hold: past the queue's
memory ceiling, refused by a full disk or a failed write, sent after the recording had stopped, or in a layout other
than the declared one (docs/recording-format.md, "When the recorder cannot keep up, or cannot write"). What they
showed, and whether the device fell silent among them, is not in the file, so nothing judged on them can be judged.
A time that is not finite (a damaged file) widens the stretch to the recording's start or end, never narrows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from workstation.recording.reader import Recording
from workstation.recording.slabs import RECORDER_SOURCE
from workstation.words import counted, seconds


@dataclass
class LostSpan:
    device: str
    t_first_s: float  # session time of the first lost sample's arrival; -inf when the file does not say
    t_last_s: float  # of the last one; +inf when the file does not say
    samples: int
    causes: tuple[str, ...]  # the recorder's own words for why (its alarm events), where it gave them
    until_s: float = math.inf  # how far what it leaves unjudged reaches (the judge sets it; inf: to the end)
    latch: object = None  # the judge's note: what it had latched on the device as the loss began

    def covers(self, device: str, t_s: float) -> bool:
        return device == self.device and self.t_first_s <= t_s <= self.until_s

    def seen(self, t_s: float, active: bool, latch: object) -> None:
        """The device's telemetry in the file at session time t_s: after the loss, inactive, and with the judge's
        latch as when the loss began (or none: a reset since), the judge is in step with the live monitor again and
        the stretch ends there. Until then (a device that stays active, or is never seen again) it reaches on."""
        if t_s > self.t_last_s and not active and (latch is None or latch is self.latch):
            self.until_s = min(self.until_s, t_s)

    def words(self, judged: tuple[str, ...]) -> str:
        """What was lost and what that leaves unjudged (`judged`: what the judge judges on the samples), in words."""
        why = f" ({'; '.join(self.causes)})" if self.causes else ""
        return (f"{counted(self.samples, 'sample')} of the {self.device}'s telemetry lost by the recorder{why} "
                f"between {_at(self.t_first_s, 'the start')} and {_at(self.t_last_s, 'the end')}: what they showed, "
                f"and whether the {self.device} fell silent, is not in the file, so {', '.join(judged)} on the "
                f"{self.device} {'is' if len(judged) == 1 else 'are'} not judged "
                + ("to the end" if self.until_s == math.inf else "until it is seen inactive again, as latched as "
                   "before the loss"))

    def reach(self) -> str:
        return f"from {_at(self.t_first_s, 'the start')} to {_at(self.until_s, 'the end')}"


def _at(t: float, otherwise: str) -> str:
    return seconds(t) if math.isfinite(t) else otherwise


def lost_spans(rec: Recording) -> list[LostSpan]:
    """Every `losses` row of every device with a sample lost, in session time, by device and time; each with the
    cause the recorder's alarm event for it gave (same device and times)."""
    t0 = rec.meta.t0_host_s
    said: dict[tuple[object, object, object], str] = {}
    for e in rec.events:
        if e.source == RECORDER_SOURCE and isinstance(cause := e.details.get("cause"), str):
            said.setdefault((e.details.get("device"), e.details.get("t_first_host_s"), e.details.get("t_last_host_s")),
                            cause)
    spans = []
    for device in rec.devices:
        for first, last, n in rec.losses(device).tolist():
            if not n:
                continue
            a = first - t0 if math.isfinite(first - t0) else -math.inf
            b = last - t0 if math.isfinite(last - t0) else math.inf
            cause = said.get((device, first, last))
            spans.append(LostSpan(device, min(a, b), max(a, b), int(n), (cause,) if cause else ()))
    return sorted(spans, key=lambda s: (s.device, s.t_first_s))


def merged_spans(spans: list[LostSpan]) -> list[LostSpan]:
    """Spans of one device whose reaches meet, made one (a long stretch past the queue ceiling is a row per flush)."""
    out: list[LostSpan] = []
    for s in sorted(spans, key=lambda s: (s.device, s.t_first_s)):
        last = out[-1] if out else None
        if last is not None and last.device == s.device and s.t_first_s <= last.until_s:
            out[-1] = replace(last, t_last_s=max(last.t_last_s, s.t_last_s), samples=last.samples + s.samples,
                              causes=tuple(dict.fromkeys(last.causes + s.causes)),
                              until_s=max(last.until_s, s.until_s))
        else:
            out.append(replace(s))
    return out
