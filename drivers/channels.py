"""Channel declarations of the two built-in device families: names match the block dtypes in drivers.protocol."""

from drivers.types import Channel

COMMON = (
    Channel("t_host_s", "s", "host monotonic clock at the frame's arrival"),
    Channel("t_device_us", "µs", "device clock of the sample"),
    Channel("seq", "count", "sequence number of the telemetry frame that carried the sample"),
)

LIGHT_CHANNELS = COMMON + (
    Channel("irradiance_mw_cm2", "mW/cm²", "measured irradiance at the handpiece window"),
    Channel("dose_mj_cm2", "mJ/cm²", "dose delivered in the current exposure, integrated by the device"),
    Channel("target_dose_mj_cm2", "mJ/cm²", "target dose at which the device closes its shutter"),
    Channel("lamp_temp_c", "°C", "lamp temperature"),
    Channel("shutter_open", "bool", "1 while the shutter is open (emitting)"),
    Channel("skin_contact", "bool", "1 while the skin sensor detects skin"),
    Channel("armed", "bool", "1 while the device is armed"),
    Channel("fault_bits", "bits", "latched LightFault bits"),
)

PEN_CHANNELS = COMMON + (
    Channel("depth_set_mm", "mm", "needle depth set point"),
    Channel("depth_mm", "mm", "measured needle depth"),
    Channel("stroke_rate_hz", "Hz", "measured stroke rate"),
    Channel("motor_current_ma", "mA", "motor current (rises with skin load)"),
    Channel("running", "bool", "1 while the motor runs (needling)"),
    Channel("skin_contact", "bool", "1 while the tip detects skin"),
    Channel("armed", "bool", "1 while the device is armed"),
    Channel("cartridge_strokes", "count", "strokes made by the fitted cartridge"),
    Channel("fault_bits", "bits", "latched PenFault bits"),
)
