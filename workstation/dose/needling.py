"""Depth, stroke rate and passes for one area, by body region, lesion and skin type, with the gentler PIH-prone
limits. Depths are on the pen's 0.05 mm grid and never above 2.5 mm."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workstation.dose.plan import Bounds
from workstation.protocols.model import Protocol
from workstation.protocols.tables import NeedlingTables, Region
from workstation.store.records import Area


@dataclass
class NeedlingResult:
    depth_mm: float
    stroke_rate_hz: float
    passes: int
    bounds: dict[str, Bounds] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def _on_grid(value_mm: float, step_mm: float) -> float:
    """Round down to the pen's depth grid (shallower is the safe direction)."""
    return round(math.floor(value_mm / step_mm + 1e-9) * step_mm, 2)


def propose_needling(*, p: Protocol, t: NeedlingTables, area: Area, region: Region, pih_prone: bool,
                     pih_why: str) -> NeedlingResult:
    rules = p.needling
    assert rules is not None
    rng = t.depth_by_class[region.depth_class]
    lo, hi = rng.min_mm, rng.max_mm
    basis = f"the depth for the {region.depth_class.replace('_', ' ')} class ({t.sources['depth']})"
    special = t.lesion_depth.get(area.lesion_type)
    if special and region.depth_class in special[1]:
        lo, hi = special[0].min_mm, special[0].max_mm
        basis = f"the depth for {area.lesion_type.replace('_', ' ')} on the body ({t.sources['lesion_depth']})"
    range_text = f"{lo:g}–{hi:g} mm is {basis}"
    if pih_prone:
        cap = t.pih_face_max_depth_mm if region.face else t.pih_other_max_depth_mm
        if hi > cap:
            hi = cap
            lo = min(lo, hi)
            range_text += (f"; PIH-prone ({pih_why}), so capped at {cap:g} mm "
                           f"{'on the face' if region.face else 'off the face'} ({t.sources['pih_prone']})")
    hi = min(hi, t.depth_max_mm)
    lo, hi = _on_grid(lo, t.depth_step_mm), _on_grid(hi, t.depth_step_mm)
    depth = {"lower": lo, "upper": hi}.get(rules.depth_choice, _on_grid((lo + hi) / 2, t.depth_step_mm))
    res = NeedlingResult(depth_mm=depth, stroke_rate_hz=rules.stroke_rate_hz, passes=rules.passes)
    where = f"the {rules.depth_choice} end of {lo:g}–{hi:g} mm" if hi > lo else f"the only depth allowed, {lo:g} mm"
    res.reasons.append(f"Depth {depth:g} mm, {where}: {range_text}. "
                       f"Endpoint: uniform pinpoint bleeding.")
    res.bounds["depth_mm"] = Bounds(lo, hi, "mm", t.depth_step_mm)
    res.reasons.append(f"Stroke rate {rules.stroke_rate_hz:g} Hz{p.citation('needling.stroke_rate_hz')}, within "
                       f"{rules.stroke_rate_min_hz:g}–{rules.stroke_rate_max_hz:g} Hz"
                       f"{p.citation('needling.stroke_rate_min_hz')}.")
    res.bounds["stroke_rate_hz"] = Bounds(rules.stroke_rate_min_hz, rules.stroke_rate_max_hz, "Hz")
    passes_max = min(rules.passes_max, t.passes_max, t.pih_passes_max if pih_prone else rules.passes_max)
    res.passes = min(rules.passes, passes_max)
    gentle = f" (PIH-prone: at most {t.pih_passes_max}, {t.sources['pih_prone']})" if pih_prone else ""
    res.reasons.append(f"{res.passes} pass{'es' if res.passes != 1 else ''}{p.citation('needling.passes')}; at most "
                       f"{passes_max}{gentle}.")
    res.bounds["passes"] = Bounds(1, passes_max, "passes", 1)
    return res
