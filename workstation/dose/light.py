"""The light dose for one area: start, response rules, missed sessions, blistering, caps. Every number comes with a
sentence. Doses are whole mJ/cm², always rounded down (the safe direction)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from workstation.dose.plan import Bounds, days
from workstation.protocols.model import Protocol
from workstation.protocols.schema import DEVICE_DOSE_MJ_CM2
from workstation.protocols.tables import LightTables
from workstation.store.records import Area, MedMeasurement, Response, SessionRecord, model_key
from workstation.words import counted


@dataclass(frozen=True)
class LightEvent:
    session_date: date
    dose_mj_cm2: float
    response: Response | None
    full: bool = True  # the whole planned dose was given (False: the session was stopped, aborted or crashed early)


@dataclass
class LightResult:
    dose_mj_cm2: float | None = None
    bounds: Bounds | None = None
    reasons: list[str] = field(default_factory=list)


def light_events(history: Sequence[SessionRecord], area_id: int) -> list[LightEvent]:
    out = []
    for s in history:
        t = s.treatment(area_id, "light")
        if t is not None and t.dose_mj_cm2:
            planned = s.planned_light_mj_cm2(area_id)
            full = planned is None or t.dose_mj_cm2 >= planned * FULL_DOSE_FRACTION
            out.append(LightEvent(s.session_date, float(t.dose_mj_cm2), s.response(area_id), full))
    return out


# A light step counts as the full planned dose when the device's telemetry reached this fraction of the target (the
# device ends the exposure at the target; its dose figure is rounded to 0.01 mJ/cm²). Team default, not clinical.
FULL_DOSE_FRACTION = 0.98


def last_full_dose(events: Sequence[LightEvent], start: float) -> tuple[float, str]:
    """The dose the next one is reckoned from: the last full dose the area received, or the protocol's start when
    every light session was cut short (a partial exposure is never the previous dose an escalation or a reduction
    starts from). Returns (mJ/cm², how it was chosen, for the reason)."""
    full = [e for e in events if e.full]
    if events and events[-1].full:
        return events[-1].dose_mj_cm2, ""
    if full:
        return full[-1].dose_mj_cm2, (f"The last light session ({events[-1].session_date.isoformat()}, "
                                      f"{events[-1].dose_mj_cm2:g} mJ/cm²) was cut short: the dose is reckoned from "
                                      f"the last full dose, {full[-1].dose_mj_cm2:g} mJ/cm² on "
                                      f"{full[-1].session_date.isoformat()}.")
    return start, (f"No light session on this area gave its full planned dose (the last gave "
                   f"{events[-1].dose_mj_cm2:g} mJ/cm² on {events[-1].session_date.isoformat()}): the dose is "
                   f"reckoned from the protocol's start, {start:g} mJ/cm².")


def is_blister(r: Response | None, t: LightTables) -> bool:
    return r is not None and (r.blistering or (r.erythema_grade or 0) >= t.blister_grade)


def is_marked(r: Response | None, t: LightTables) -> bool:
    """Grade 2, or erythema that lasted longer than 48 h."""
    return r is not None and ((r.erythema_grade or 0) >= t.reduce_grade
                              or (r.erythema_duration_h or 0) > t.long_erythema_h)


def med_on_file(meds: Sequence[MedMeasurement], device_model: str | None) -> MedMeasurement | None:
    """The latest MED measured on `device_model` (names compared with model_key: case and spacing do not matter; an
    MED does not carry to another device model, CLINICAL.md). Of two on the same day, the one entered last (the
    store's insertion id; then the order given). The one function the patient page and the dose engine both use."""
    key = model_key(device_model) if device_model else ""
    mine = [m for m in meds if key and model_key(m.device_model) == key]
    return newest_med(mine)


def newest_med(meds: Sequence[MedMeasurement]) -> MedMeasurement | None:
    """The newest of `meds` whatever their order: by measurement date, then by the store's insertion id, then by
    position; None when empty."""
    ranked = [((m.measured_on, m.id, i), m) for i, m in enumerate(meds)]
    return max(ranked, key=lambda x: x[0])[1] if ranked else None


def med_elsewhere(meds: Sequence[MedMeasurement], device_model: str | None) -> str:
    """'' when an MED is on file for this device model or none is on file at all; else the sentence saying that the
    MED on file (measured on another model, or the session's model is unknown) does not carry to this device. Light
    is then not planned on the area (team decision, the conservative option: docs/protocol-file-schema.md, "MED")."""
    if not meds or med_on_file(meds, device_model) is not None:
        return ""
    m = newest_med(meds)
    assert m is not None
    here = (f"this device is {' '.join(device_model.split())}" if device_model and device_model.strip()
            else "the device model of this session is not known")
    return (f"an MED of {m.med_mj_cm2:g} mJ/cm² measured on model {m.device_model} on {m.measured_on.isoformat()} is "
            f"on file; it does not carry to this device ({here}; CLINICAL.md: an MED measured on one device does not "
            "carry to another) — measure the MED on this device")


def med_first_dose_bound(p: Protocol, t: LightTables, med: MedMeasurement) -> tuple[int, Callable[[str], str]]:
    """The highest first dose (whole mJ/cm², rounded down) the patient's MED allows under protocol `p`, and a function
    that words how it is derived given the words for the MED: the protocol's own MED rule (MED − N for `med_minus`,
    fraction × MED for `med_fraction`), never above the tables' MED fraction (70 % of the MED, Photonet / NHS Tayside,
    CLINICAL.md "MED testing: start at 70 % of MED"), which is also the bound for a protocol that does not start from
    the MED. May be zero or negative: then no first dose is possible on MED grounds."""
    rules = p.light
    assert rules is not None
    top = t.med_first_dose_max_fraction
    seventy = math.floor(med.med_mj_cm2 * top)
    if rules.start_method == "med_minus":
        minus = rules.med_minus_mj_cm2 or 0.0
        own = math.floor(med.med_mj_cm2 - minus)
        cite = p.citation("light.med_minus_mj_cm2")
        if own <= seventy:
            return own, lambda m: f"{minus:g} mJ/cm² below {m}{cite}"
        return seventy, lambda m: (f"{top * 100:g} % of {m} ({t.sources['med']}), which is below the protocol's "
                                   f"{minus:g} mJ/cm² under it ({own} mJ/cm²{cite}): the lower of the two")
    if rules.start_method == "med_fraction":
        fraction, cite = min(rules.med_fraction or 0.0, top), p.citation("light.med_fraction")
        return math.floor(med.med_mj_cm2 * fraction), lambda m: f"{fraction * 100:g} % of {m}{cite}"
    return seventy, lambda m: f"{top * 100:g} % of {m} ({t.sources['med']})"


def med_block(t: LightTables, med: MedMeasurement, bound: int, how: str, device_min_mj_cm2: float) -> str:
    """'' when the MED allows light; else the reason light is blocked: an MED below the plausible floor (team default
    in seeds/tables/light_dosing.toml [med]) or a bound below the device minimum. Both ask for a photosensitivity
    work-up; the skin-type start is never used instead (CLINICAL.md, "The MED bounds every first dose")."""
    measured = _measured(med)
    if med.med_mj_cm2 < t.med_plausible_min_mj_cm2:
        return (f"No light: MED too low: photosensitivity work-up. {measured[0].upper()}{measured[1:]} is below "
                f"{t.med_plausible_min_mj_cm2:g} mJ/cm² ({t.sources['med_floor']}); the skin-type start is only for "
                f"patients without an MED ({t.sources['med']}).")
    if bound < device_min_mj_cm2:
        return (f"No light: MED too low for this device: photosensitivity work-up. {how[0].upper()}{how[1:]} is "
                f"{bound} mJ/cm², below the device minimum of {device_min_mj_cm2:g} mJ/cm²; the skin-type start is "
                f"only for patients without an MED ({t.sources['med']}).")
    return ""


def _measured(med: MedMeasurement) -> str:
    return f"the MED of {med.med_mj_cm2:g} mJ/cm² measured on {med.device_model} on {med.measured_on.isoformat()}"


def start_dose(p: Protocol, t: LightTables, area: Area, meds: Sequence[MedMeasurement], device_model: str | None,
               device_min_mj_cm2: float = DEVICE_DOSE_MJ_CM2[0]) -> tuple[float | None, str]:
    """The first dose on an area and the sentence saying why; None when light cannot start: an MED on file for
    another device model or with the model unknown (med_elsewhere), an implausibly low MED, or an MED whose bound is
    below the device minimum (never replaced by the skin-type start, CLINICAL.md). Every light protocol goes through
    here, so an MED on file bounds every first dose, whatever the start method."""
    rules = p.light
    assert rules is not None
    table = t.by_skin_type[area.skin_type]
    table_reason = (f"Start at {table.start_mj_cm2:g} mJ/cm², the NB-UVB start for skin type {area.skin_type} "
                    f"({t.sources['skin_type']}).")
    elsewhere = med_elsewhere(meds, device_model)
    if elsewhere:
        return None, f"No light: {elsewhere}."
    med = med_on_file(meds, device_model)
    if med is not None:
        bound, how_fn = med_first_dose_bound(p, t, med)
        how = how_fn(_measured(med))
        blocked = med_block(t, med, bound, how, device_min_mj_cm2)
        if blocked:
            return None, blocked
        if rules.start_method in ("med_minus", "med_fraction"):
            return float(bound), f"Start at {bound} mJ/cm², {how}."
        own, own_reason = _method_start(p, t, area, table_reason)
        if own <= bound:
            return own, f"{own_reason} It is within {how} ({bound} mJ/cm²)."
        return float(bound), (f"Start at {bound} mJ/cm², {how}: the MED bounds every first dose, so not the "
                              f"protocol's {own:g} mJ/cm².")
    if rules.start_method in ("skin_type_table", "fixed"):
        return _method_start(p, t, area, table_reason)
    return table.start_mj_cm2, ("The protocol starts from the MED, but no MED is on file for this patient. "
                                + table_reason)


def new_med_bound(p: Protocol, t: LightTables, meds: Sequence[MedMeasurement], device_model: str | None,
                  last: LightEvent, dose: float, device_min_mj_cm2: float) -> tuple[float | None, str]:
    """An MED measured after the area's last light session bounds the next dose like a first dose (CLINICAL.md: start
    at 70 % of MED; a new MED lower than the doses given means the patient is more sensitive than the course
    assumed): (inf, '') when it does not lower the dose; (bound, reason) when it does; (None, reason) when it blocks.
    A clinician reviews the course either way (the reason says so)."""
    med = med_on_file(meds, device_model)
    if med is None or med.measured_on <= last.session_date:
        return math.inf, ""
    bound, how_fn = med_first_dose_bound(p, t, med)
    how = how_fn(_measured(med))
    blocked = med_block(t, med, bound, how, device_min_mj_cm2)
    if blocked:
        return None, f"{blocked} It was measured after the last light session ({last.session_date.isoformat()})."
    if dose <= bound:
        return float(bound), ""
    return float(bound), (f"A new MED was measured after the last light session ({last.dose_mj_cm2:g} mJ/cm² on "
                          f"{last.session_date.isoformat()}): {how} is {bound} mJ/cm², below the {dose:g} mJ/cm² the "
                          "rules give, so the patient is more sensitive than the course assumed. The latest MED bounds "
                          f"every dose: restart at {bound} mJ/cm²; a clinician reviews the course before going on.")


def _method_start(p: Protocol, t: LightTables, area: Area, table_reason: str) -> tuple[float, str]:
    """The start of a protocol that does not start from the MED: the skin-type table, or a fixed start that is never
    above the table's start for the area's skin type (the factory tables bound every clinic file)."""
    rules = p.light
    assert rules is not None
    table = t.by_skin_type[area.skin_type]
    if rules.start_method != "fixed":
        return table.start_mj_cm2, table_reason
    fixed = float(rules.fixed_start_mj_cm2 or 0)
    if fixed > table.start_mj_cm2:
        return table.start_mj_cm2, (f"This protocol's fixed start of {fixed:g} mJ/cm² is above the factory table's "
                                    f"start for skin type {area.skin_type}. " + table_reason)
    return fixed, f"Start at {fixed:g} mJ/cm², this protocol's fixed start{p.citation('light.fixed_start_mj_cm2')}."


def propose_light(*, p: Protocol, t: LightTables, area: Area, face: bool, history: Sequence[SessionRecord],
                  meds: Sequence[MedMeasurement], device_model: str | None, visit_date: date,
                  course_interval_days: int, cleared: bool,
                  device_dose_range_mj_cm2: tuple[float, float] = DEVICE_DOSE_MJ_CM2,
                  elsewhere_mj_cm2: float = 0.0) -> LightResult:
    """The light dose for `area` today (None with the reason when there is none). `history` is the course's sessions;
    `elsewhere_mj_cm2` the light on the same place in other courses (or other areas on the region), which counts
    against the cumulative cap too. The device range bounds the dose (the MED may block light)."""
    rules = p.light
    dmin, dmax = device_dose_range_mj_cm2
    assert rules is not None
    res = LightResult()
    events = light_events(history, area.id)
    delivered = sum(e.dose_mj_cm2 for e in events) + elsewhere_mj_cm2
    remaining = rules.cumulative_cap_mj_cm2 - delivered
    where = (f"{delivered:g} mJ/cm² over every course on its place ({elsewhere_mj_cm2:g} of it outside this course)"
             if elsewhere_mj_cm2 else f"{delivered:g} mJ/cm² in this course")
    if remaining < dmin:
        res.reasons.append(f"No light: this area has had {where}, the cumulative cap of "
                           f"{rules.cumulative_cap_mj_cm2:g} mJ/cm²{p.citation('light.cumulative_cap_mj_cm2')}, "
                           "counted across courses.")
        return res
    start, start_reason = start_dose(p, t, area, meds, device_model, dmin)
    if start is None:
        res.reasons.append(start_reason)
        return res
    step_pct = rules.escalation_percent
    if not events:
        dose, upper = start, start
        first = ("First light session on this area." if not elsewhere_mj_cm2 else
                 f"First light session of this course on this area; its place has had {elsewhere_mj_cm2:g} mJ/cm² "
                 "in other courses or areas on the same region, which count towards the cumulative cap.")
        res.reasons.append(f"{first} {start_reason}")
    else:
        last = events[-1]
        prev, base_why = last_full_dose(events, start)
        if base_why:
            res.reasons.append(base_why)
        full_events = [e for e in events if e.full]
        r = last.response
        when = last.session_date.isoformat()
        upper = math.floor(prev * (1 + t.escalation_max_percent / 100))
        if is_blister(r, t):
            if not cleared:
                res.reasons.append(f"No light: the light session on {when} left blistering or grade "
                                   f"{r.erythema_grade if r else '?'} erythema; no light until it has healed. Confirm "
                                   f"healing to plan light ({t.sources['erythema']}).")
                return res
            cut = max(t.blister_reduce_mj_cm2, prev * t.blister_reduce_percent / 100)
            rule = (f"reduce {prev:g} mJ/cm² by {t.blister_reduce_mj_cm2:g} mJ/cm² or {t.blister_reduce_percent:g} %, "
                    "whichever is larger")
            if math.floor(prev - cut) < dmin:
                res.reasons.append(_nothing_left(f"Blistering after the light session on {when}, now healed", rule,
                                                 dmin, t.sources["erythema"]))
                return res
            dose = upper = math.floor(prev - cut)
            res.reasons.append(f"Blistering after the light session on {when}, now healed: {rule}, to {dose} mJ/cm², "
                               f"then hold for {counted(t.blister_hold_sessions, 'session')} ({t.sources['erythema']}).")
        elif is_marked(r, t):
            if not cleared:
                res.reasons.append(f"No light: the light session on {when} left marked erythema (grade "
                                   f"{r.erythema_grade if r else '?'} or lasting over {t.long_erythema_h:g} h); no "
                                   f"light until it clears. Confirm it has cleared to plan light "
                                   f"({t.sources['erythema']}).")
                return res
            cut = max(t.reduce_mj_cm2, prev * t.reduce_percent / 100)
            rule = (f"reduce {prev:g} mJ/cm² by {t.reduce_mj_cm2:g} mJ/cm² or {t.reduce_percent:g} %, whichever is "
                    "larger")
            if math.floor(prev - cut) < dmin:
                res.reasons.append(_nothing_left(f"Marked erythema after the light session on {when}, now cleared",
                                                 rule, dmin, t.sources["erythema"]))
                return res
            dose = upper = math.floor(prev - cut)
            res.reasons.append(f"Marked erythema after the light session on {when}, now cleared: {rule}, to {dose} "
                               f"mJ/cm² ({t.sources['erythema']}).")
        elif r is None or r.erythema_grade is None:
            dose = upper = prev
            res.reasons.append(f"No erythema grade was recorded after the light session on {when}: hold at "
                               f"{prev:g} mJ/cm². Record the response to allow escalation.")
        elif r.erythema_grade >= t.hold_grade:
            dose = prev
            res.reasons.append(f"Grade {r.erythema_grade} erythema after {prev:g} mJ/cm² on {when}: hold the dose "
                               f"({t.sources['erythema']}).")
        else:
            dose, why = _escalate(p, t, area, prev, full_events)
            res.reasons.append(why)
        dose, upper = _after_blister(t, events, prev, dose, upper, step_pct, res.reasons)
        dose, upper = _missed(t, events[-1], prev, visit_date, course_interval_days, start, dose, upper,
                              res.reasons)
        bounded, why = new_med_bound(p, t, meds, device_model, events[-1], dose, dmin)
        if why:
            res.reasons.append(why)
        if bounded is None:
            return res
        dose, upper = min(dose, bounded), min(upper, bounded)
    caps = [(t.by_skin_type[area.skin_type].max_mj_cm2, f"the maximum for skin type {area.skin_type} "
             f"({t.sources['skin_type']})"),
            (math.floor(remaining), f"what remains of the cumulative cap of {rules.cumulative_cap_mj_cm2:g} mJ/cm²"
             f"{p.citation('light.cumulative_cap_mj_cm2')}"),
            (dmax, "the device maximum")]
    if face:
        caps.append((t.face_max_mj_cm2, f"the face cap ({t.sources['face']})"))
    cap, cap_why = min(caps, key=lambda c: c[0])
    if dose > cap:
        res.reasons.append(f"Capped at {cap:g} mJ/cm² by {cap_why}.")
    dose, upper = min(dose, cap), min(upper, cap)
    dose = min(dose, upper)
    if dose < dmin:
        res.reasons.append(f"No light: the dose after the rules above ({dose:g} mJ/cm²) is below the device minimum "
                           f"of {dmin:g} mJ/cm².")
        return res
    res.dose_mj_cm2 = float(dose)
    res.bounds = Bounds(dmin, float(max(upper, dose)), "mJ/cm²")
    res.reasons.append(f"Target dose {dose:g} mJ/cm²; a clinician may change it within "
                       f"{res.bounds.minimum:g}–{res.bounds.maximum:g} mJ/cm² with a reason.")
    return res


def _escalate(p: Protocol, t: LightTables, area: Area, prev: float, events: Sequence[LightEvent]) -> tuple[float, str]:
    rules = p.light
    assert rules is not None
    if area.skin_type in rules.repeat_dose_skin_types and (len(events) < 2 or events[-2].dose_mj_cm2 != prev):
        return prev, (f"No erythema after {prev:g} mJ/cm², but skin type {area.skin_type} repeats each dose once "
                      f"before it is raised{p.citation('light.repeat_dose_skin_types')}: hold.")
    cap = prev * t.escalation_max_percent / 100
    if rules.escalation_method == "skin_type_table":
        step = min(t.by_skin_type[area.skin_type].increment_mj_cm2, cap)
        basis = f"the NB-UVB increment for skin type {area.skin_type} ({t.sources['skin_type']})"
    else:
        step = min(prev * rules.escalation_percent / 100, cap)
        basis = f"{rules.escalation_percent:g} % of the last dose{p.citation('light.escalation_percent')}"
    dose = math.floor(prev + step)
    return dose, (f"Grade 0 erythema after {prev:g} mJ/cm²: escalate by {basis}, never above "
                  f"{t.escalation_max_percent:g} %, to {dose} mJ/cm².")


def _nothing_left(what: str, rule: str, dmin: float, source: str) -> str:
    """The sentence for a reduction that leaves less than the device can give (never a negative dose in words)."""
    return (f"No light: {what}; the rule ({rule}, {source}) leaves less than the device minimum of {dmin:g} "
            "mJ/cm², so no light is planned on this area. A clinician reviews the course.")


def _after_blister(t: LightTables, events: Sequence[LightEvent], prev: float, dose: float, upper: float,
                   step_pct: float, reasons: list[str]) -> tuple[float, float]:
    """After a blister the engine never raises the dose itself; a clinician may climb by half-steps after the hold.
    `prev` is the dose reckoned from (last_full_dose)."""
    blisters = [i for i, e in enumerate(events) if is_blister(e.response, t)]
    if not blisters or blisters[-1] == len(events) - 1:
        return dose, upper
    since = len(events) - 1 - blisters[-1]
    if dose > prev:
        reasons.append(f"This area blistered on {events[blisters[-1]].session_date.isoformat()}: the engine does not "
                       f"raise the dose after a blister without a clinician's override; hold at {prev:g} mJ/cm².")
    dose = min(dose, prev)
    if since <= t.blister_hold_sessions:
        return dose, min(upper, prev)
    half = math.floor(prev * (1 + step_pct / 100 * t.blister_climb_fraction))
    reasons.append(f"The {t.blister_hold_sessions}-session hold after the blister is over: a clinician may climb by "
                   f"a half-step, to at most {half} mJ/cm², with a reason ({t.sources['erythema']}).")
    return dose, min(upper, half)


def _missed(t: LightTables, last: LightEvent, prev: float, visit_date: date, interval_days: int, start: float,
            dose: float, upper: float, reasons: list[str]) -> tuple[float, float]:
    delay = (visit_date - last.session_date).days - interval_days
    rule = next((m for m in t.missed if m.from_days <= delay and (m.to_days is None or delay <= m.to_days)), None)
    if rule is None or rule.action == "keep":
        return dose, upper
    if rule.action == "reduce":
        target = math.floor(prev * (1 - rule.reduce_percent / 100))
        what = f"reduce the last dose by {rule.reduce_percent:g} % to {target} mJ/cm²"
    else:
        target = math.floor(start)
        what = f"restart at the start dose of {target} mJ/cm²"
    if target < dose:
        reasons.append(f"The visit is {days(delay)} later than the planned interval of {days(interval_days)}: {what} "
                       f"({t.sources['missed']}; applied to the delay beyond the planned interval, a team default).")
    return min(dose, target), min(upper, target)
