#!/bin/bash
# Real-GPU check: ragtrail collector + the NVML GPU agent for ~20 s (optionally under a load given as
# Python in $LOAD), then SQL over the stored gpu view. For a bare Python 3.12 GPU host without
# OpenTelemetry/DuckDB: copy this script into an ignored folder together with the wheels of
# `pip wheel --no-deps .` and `pip download --only-binary=:all: --python-version 3.12 ...` of
# opentelemetry-{api,sdk,semantic-conventions,proto,exporter-otlp-proto-grpc,-proto-common,-common},
# googleapis-common-protos, protobuf, grpcio, duckdb, uvicorn, h11, httptools, orjson, click,
# typing_extensions, and run it from there.
HERE=$(cd "$(dirname "$0")" && pwd)
SITE=${SITE:-/tmp/site}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$HERE"/*.whl || exit 1
export PYTHONPATH=$SITE RAGTRAIL_REDACTION=off PYTHONUNBUFFERED=1
OUTDIR=${OUT:-/tmp/out}; mkdir -p "$OUTDIR"
cd /tmp && rm -rf /tmp/rtdata && mkdir -p /tmp/rtdata   # not the repo root: its ragtrail/ would shadow the install
python3 -m ragtrail.cli collector --data /tmp/rtdata --grpc-port 14317 --http-port 14318 >"$OUTDIR/collector.log" 2>&1 &
CPID=$!
for _ in $(seq 120); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:14318/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.5
done
echo "== nvidia-smi before"; nvidia-smi --query-gpu=name,uuid,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu --format=csv 2>&1
if [ -n "$LOAD" ]; then
  (sleep 6; env -u PYTHONPATH python3 -c "$LOAD") &
fi
echo "== gpu-agent"
python3 -m ragtrail.cli gpu-agent --endpoint 127.0.0.1:14317 --interval 2 --duration 20 -v $AGENT_ARGS; echo "agent rc=$?"
sleep 3
echo "== SQL"
python3 -m ragtrail.cli sql --data /tmp/rtdata "SELECT strftime(time, '%H:%M:%S') AS t, host, gpu_id, gpu_name, round(utilization, 2) AS util, round(memory_used_bytes / 2^30, 2) AS mem_gib, round(memory_total_bytes / 2^30, 2) AS total_gib, power_w, temperature_c, simulated FROM gpu ORDER BY time"
python3 -m ragtrail.cli sql --data /tmp/rtdata "SELECT count(*) AS samples, any_value(gpu_name) AS gpu, max(utilization) AS max_util, min(power_w) AS min_w, max(power_w) AS max_w, max(temperature_c) AS max_c FROM gpu"
kill $CPID; wait $CPID
echo "collector rc=$?"
