"""Session-wide rules: screening blocks and warnings, PIH-proneness, and the interval dates per area and modality."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from workstation.dose.light import light_events
from workstation.dose.plan import days
from workstation.protocols.model import Protocol
from workstation.protocols.tables import Tables
from workstation.store.records import Area, ScreeningAnswer, SessionRecord


@dataclass
class ScreeningResult:
    blocked: dict[str, list[str]] = field(default_factory=dict)  # modality -> sentences
    warnings: list[str] = field(default_factory=list)
    pih_history: bool = False


def evaluate_screening(t: Tables, answers: Sequence[ScreeningAnswer], modalities: Sequence[str]) -> ScreeningResult:
    latest: dict[str, ScreeningAnswer] = {}
    for a in sorted(answers, key=lambda a: a.answered_on):
        latest[a.item_id] = a
    res = ScreeningResult()
    for item in t.screening:
        ans = latest.get(item.id)
        for m in item.blocks:
            if m not in modalities:
                continue
            if ans is None:
                res.blocked.setdefault(m, []).append(f"No {m}: the screening question \"{item.question}\" has not "
                                                     "been answered; answer it to plan this treatment.")
            elif ans.answer:
                res.blocked.setdefault(m, []).append(f"No {m}: screening \"{item.question}\" was answered yes on "
                                                     f"{ans.answered_on.isoformat()} ({item.source}).")
        relevant = [m for m in item.warns if m in modalities]
        if relevant and ans is not None and ans.answer:
            res.warnings.append(f"Warning for {' and '.join(relevant)}: \"{item.question}\" answered yes on "
                                f"{ans.answered_on.isoformat()} ({item.source}); acknowledge before treating.")
        elif relevant and ans is None:
            res.warnings.append(f"Screening question \"{item.question}\" has not been answered; answer it before "
                                "treating.")
        if item.id == "pih_history" and ans is not None and ans.answer:
            res.pih_history = True
    return res


def pih_prone_why(p: Protocol, t: Tables, area: Area, pih_history: bool) -> str:
    """Why this area gets the PIH-prone limits, or '' when it does not."""
    if area.skin_type in t.needling.pih_prone_skin_types:
        return f"skin type {area.skin_type}"
    if pih_history:
        return "a PIH history"
    if area.lesion_type in ("pih", "hyperpigmented_scar"):
        return f"the area is classified {area.lesion_type.replace('_', ' ')}"
    if t.scar_kinds is not None and t.scar_kinds.forbids_uv(area.scar_kind):
        return f"the area is recorded as scar kind {area.scar_kind}"
    if p.needling is not None and p.needling.always_pih_prone_limits:
        return "this protocol applies the PIH-prone limits to every area"
    return ""


def first_allowed(p: Protocol, t: Tables, area: Area, history: Sequence[SessionRecord], modality: str,
                  pih_prone: bool) -> tuple[date | None, str]:
    """The first date `modality` is allowed on `area` by the interval rules, and the sentence saying why."""
    iv = t.intervals
    candidates: list[tuple[date, str]] = []
    needled = [s.session_date for s in history if s.treatment(area.id, "needling")]
    events = light_events(history, area.id)
    if modality == "light":
        assert p.light is not None
        gap = max(p.light.min_interval_days, iv.light_min_days)
        if events:
            candidates.append((events[-1].session_date + timedelta(days=gap),
                               f"light needs {days(gap)} between sessions on an area ({iv.sources['light']})"))
        # A session that planned light here and crashed with its recording unreadable here (damaged, or on another
        # room's computer) gave an unknown dose: the light interval runs from it as from any light session.
        unknown = [s.session_date for s in history if s.state == "crashed" and s.recording_sha256 is None
                   and s.planned_light_mj_cm2(area.id) is not None and s.treatment(area.id, "light") is None]
        if unknown:
            candidates.append((unknown[-1] + timedelta(days=gap),
                               f"the session of {unknown[-1].isoformat()} planned light here and ended in a crash "
                               "whose recording could not be read here, so the dose it gave is unknown; light needs "
                               f"{days(gap)} between sessions on an area ({iv.sources['light']})"))
        if needled:
            candidates.append((needled[-1] + timedelta(days=iv.no_uv_after_needling_days + 1),
                               f"an area needled in the last {days(iv.no_uv_after_needling_days)} gets no UV "
                               f"({iv.sources['combined']})"))
    else:
        assert p.needling is not None
        gap = max(p.needling.min_interval_days, iv.needling_min_days,
                  t.needling.pih_min_interval_days if pih_prone else 0)
        if needled:
            candidates.append((needled[-1] + timedelta(days=gap),
                               f"needling needs {days(gap)} between sessions on an area "
                               f"({t.needling.sources['pih_prone'] if pih_prone else iv.sources['needling']})"))
        reddened = [e.session_date for e in events if e.response is not None
                    and (e.response.erythema_grade or 0) >= iv.no_needling_erythema_grade]
        if reddened:
            candidates.append((reddened[-1] + timedelta(days=iv.no_needling_after_erythema_days + 1),
                               f"no needling within {days(iv.no_needling_after_erythema_days)} after light that left "
                               f"grade {iv.no_needling_erythema_grade} or more erythema ({iv.sources['combined']})"))
    if not candidates:
        return None, ""
    return max(candidates, key=lambda c: c[0])
