"""Channel declarations of the two built-in device families: names match the block dtypes in drivers.protocol.

Each channel declares where it travels on the wire (`Wire`: one telemetry decoder for every driver reads the frames
by these declarations, `drivers.protocol.telemetry_decoder`) and its physical range (and, for the dose, its
monotonicity): a CRC-valid sample outside it is implausible, rejected by the driver before anything sees it (`drivers/plausibility.py`), and a `sensor_implausible`
interlock while the device is active. The ranges are the device's physical limits, wider than any clinical limit:
a value outside the clinical limit but inside the physical range is real and is the safety monitor's to trip on.
"""

from drivers.protocol import FLAG_ACTIVE, FLAG_ARMED, FLAG_CONTACT, LIGHT_DOSE_SCALE
from drivers.types import Channel, Wire

# The handpiece's irradiance sensor: twice the 150 mW/cm² of an excimer laser (CLINICAL.md, vendor comparison), so a
# real lamp never reads above it; the emulated lamp is 100 mW/cm² nominal.
MAX_IRRADIANCE_MW_CM2 = 300.0
# The irradiance an exposure may be *expected* at (a radiometer check's reading, or the device's calibration report),
# from which its backup time is computed: at least half the 100 mW/cm² of an excimer lamp (CLINICAL.md, vendor
# comparison: lamps about 100, lasers about 150 mW/cm²). Below it the lamp is failing or the calibration is wrong, and
# the backup time (1.25 × target / expected) would be more than 2.5 × the exposure at the nominal 100 mW/cm², so no
# longer a bound worth the name. Used by the light driver (no target without it) and `main.py devices check`.
NOMINAL_IRRADIANCE_MW_CM2 = 100.0
MIN_EXPECTED_IRRADIANCE_MW_CM2 = 50.0
# A radiometer check whose factor (measured / reported) is outside this range means the device's sensor is broken,
# not off calibration: it is refused (the device needs service), not recorded as a factor to apply.
CHECK_FACTOR_RANGE = (0.5, 2.0)
# Target doses go to 5000 mJ/cm² (the device bound, NB-UVB maximum for skin types V–VI); a shutter that fails to close
# may carry the dose past it, which the host's target-dose interlock must see: room for 1000 mJ/cm² more (≥ 3 s at
# the maximum irradiance) before a dose reading is impossible.
MAX_DOSE_MJ_CM2 = 6000.0
# Dose is integrated by the device; between two samples it cannot grow by more than the maximum irradiance allows
# (1 mW/cm² for 1 s = 1 mJ/cm²), plus the 0.001 mJ/cm² resolution of the wire (added by the checker).
MAX_DOSE_RISE_MJ_CM2_PER_S = MAX_IRRADIANCE_MW_CM2

COMMON = (
    Channel("t_host_s", "s", "host monotonic clock at the frame's arrival"),
    Channel("t_device_us", "µs", "device clock of the sample (strictly increasing; checked per frame)"),
    Channel("seq", "count", "sequence number of the telemetry frame that carried the sample"),
)

LIGHT_CHANNELS = COMMON + (
    Channel("irradiance_mw_cm2", "mW/cm²", "measured irradiance at the handpiece window",
            wire=Wire("irradiance_cmw", scale=100.0),
            minimum=0.0, maximum=MAX_IRRADIANCE_MW_CM2),
    Channel("dose_mj_cm2", "mJ/cm²", "dose delivered in the current exposure, integrated by the device",
            minimum=0.0, maximum=MAX_DOSE_MJ_CM2, exposure_monotonic=True,
            max_rise_per_s=MAX_DOSE_RISE_MJ_CM2_PER_S, wire=Wire("dose_udose", scale=LIGHT_DOSE_SCALE)),
    Channel("target_dose_mj_cm2", "mJ/cm²", "target dose at which the device closes its shutter (0: none set)",
            minimum=0.0, maximum=5000.0, wire=Wire("target_dose_mdose", scale=LIGHT_DOSE_SCALE, header=True)),
    # A lamp housing in a treatment room: below −20 °C or above 150 °C the sensor, not the lamp, is broken
    # (the device cuts out at 45 °C, the host at 42 °C).
    Channel("lamp_temp_c", "°C", "lamp temperature", minimum=-20.0, maximum=150.0,
            wire=Wire("lamp_temp_cc", scale=100.0)),
    Channel("shutter_open", "bool", "1 while the shutter is open (emitting)", wire=Wire("flags", flag=FLAG_ACTIVE)),
    Channel("skin_contact", "bool", "1 while the skin sensor detects skin", wire=Wire("flags", flag=FLAG_CONTACT)),
    Channel("armed", "bool", "1 while the device is armed", wire=Wire("flags", flag=FLAG_ARMED)),
    Channel("fault_bits", "bits", "latched LightFault bits", wire=Wire("faults")),
)

PEN_CHANNELS = COMMON + (
    # 0–3.0 mm: the longest needle setting of the pens in CLINICAL.md (Dermapen 4); the device's own bound is 2.5 mm.
    Channel("depth_set_mm", "mm", "needle depth set point", minimum=0.0, maximum=3.0,
            wire=Wire("depth_set_um", scale=1000.0)),
    Channel("depth_mm", "mm", "measured needle depth", minimum=0.0, maximum=3.0, wire=Wire("depth_um", scale=1000.0)),
    # Automated pens run 50–150 stamps/s, SkinPen ≈ 117 (CLINICAL.md): 200 Hz is beyond any motor of the family.
    Channel("stroke_rate_hz", "Hz", "measured stroke rate", minimum=0.0, maximum=200.0,
            wire=Wire("stroke_rate_chz", scale=100.0)),
    # The emulated motor stalls at 900 mA; 2 A is beyond the driver stage.
    Channel("motor_current_ma", "mA", "motor current (rises with skin load)", minimum=0.0, maximum=2000.0,
            wire=Wire("motor_current_dma", scale=10.0)),
    Channel("running", "bool", "1 while the motor runs (needling)", wire=Wire("flags", flag=FLAG_ACTIVE)),
    Channel("skin_contact", "bool", "1 while the tip detects skin", wire=Wire("flags", flag=FLAG_CONTACT)),
    Channel("armed", "bool", "1 while the device is armed", wire=Wire("flags", flag=FLAG_ARMED)),
    Channel("cartridge_strokes", "count", "strokes made by the fitted cartridge",
            wire=Wire("cartridge_strokes", header=True)),
    Channel("fault_bits", "bits", "latched PenFault bits", wire=Wire("faults")),
)
