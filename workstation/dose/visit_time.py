"""The plan's expected session time, so the clinic can book the 15–30 minutes the seed documents give: set-up, each
light exposure (dose ÷ irradiance, CLINICAL.md: 1 mW/cm² for 1 s = 1 mJ/cm²) with its positioning, and each needling
pass over the area's size (team defaults in seeds/tables/session_time.toml)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workstation.dose.plan import AreaPlan
from workstation.protocols.visit_tables import SessionTime
from workstation.words import counted


def expected_minutes(plans: Sequence[AreaPlan], sizes_cm2: Mapping[int, float], st: SessionTime,
                     irradiance_mw_cm2: float | None) -> tuple[float, str]:
    """(minutes, the sentence explaining them). `irradiance_mw_cm2` is the light device's calibrated irradiance; when
    None the table's default is used and the sentence says so."""
    irr = irradiance_mw_cm2 if irradiance_mw_cm2 and irradiance_mw_cm2 > 0 else st.default_irradiance_mw_cm2
    irr_words = (f"at the calibrated {irr:g} mW/cm²" if irradiance_mw_cm2 else
                 f"at {irr:g} mW/cm², the expected irradiance ({st.sources['light']}); the device's calibration was "
                 "not given")
    seconds = st.setup_minutes * 60
    parts = [f"set-up {st.setup_minutes:g} min"]
    for p in plans:
        if p.has_light and p.target_dose_mj_cm2:
            exposure_s = p.target_dose_mj_cm2 / irr
            seconds += exposure_s + st.light_positioning_s_per_area
            shown = f"{exposure_s:.0f} s" if exposure_s >= 1 else f"{exposure_s:.1g} s"  # never "0 s"
            parts.append(f"light on {p.label} {shown} exposure ({p.target_dose_mj_cm2:g} mJ/cm² {irr_words}) "
                         f"+ {st.light_positioning_s_per_area:g} s positioning")
        if p.has_needling and p.passes:
            needling_s = p.passes * sizes_cm2.get(p.area_id, 0.0) * st.needling_s_per_cm2_per_pass
            seconds += needling_s
            parts.append(f"needling on {p.label} {counted(p.passes, 'pass', 'passes')} over {sizes_cm2.get(p.area_id, 0.0):g} cm², "
                         f"about {needling_s / 60:.1f} min")
    minutes = round(seconds / 60, 1)
    fit = ("within" if st.booking_min_minutes <= minutes <= st.booking_max_minutes else
           "shorter than" if minutes < st.booking_min_minutes else "longer than")
    return minutes, (f"Expected session time about {minutes:g} min ({'; '.join(parts)}; {st.sources['steps']}), "
                     f"{fit} the {st.booking_min_minutes:g}–{st.booking_max_minutes:g} min a session lasts "
                     f"({st.sources['booking']}).")
