-- gpu: one row per GPU sample. Readings of one (time, host, gpu) arrive as separate metric points
-- (OTel hw.* or DCGM names); this folds them into one sample row.
CREATE OR REPLACE VIEW gpu AS
SELECT
    time,
    host,
    gpu_id,
    any_value(gpu_name) AS gpu_name,
    max(utilization) AS utilization,
    max(memory_used_bytes) AS memory_used_bytes,
    max(memory_total_bytes) AS memory_total_bytes,
    max(power_w) AS power_w,
    max(temperature_c) AS temperature_c,
    max(ooms) AS ooms,
    bool_or(simulated) AS simulated,
    any_value(service_name) AS service_name
FROM gpu_readings
GROUP BY time, host, gpu_id;
