#!/usr/bin/env bash
# Instructions instrument() adds per openai SDK call, under callgrind (steady whatever the load).
# Usage: benchmarks/callgrind_client.sh nonstream|stream [KIND...]   (KIND: bare prom full)
# Each variant runs twice (N1 and N2 calls after the same warm-up); per call = the difference
# divided by N2 - N1, which removes start-up. SRC=path/to/src measures another tree.
set -euo pipefail
MODE=${1:?usage: callgrind_client.sh nonstream|stream [KIND...]}; shift
KINDS=${*:-bare full}
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=${PY:-$HERE/../.venv/bin/python}
SRC=${SRC:-$HERE/../src}
FLAG=""; N1=20; N2=100
if [ "$MODE" = stream ]; then FLAG=--stream; N1=5; N2=20; fi
"$PY" "$HERE/bench_replay.py" $FLAG --callgrind plain 0 >/dev/null  # record once, outside valgrind
ir() {
  PYTHONHASHSEED=0 PYTHONPATH="$SRC" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$PY" "$HERE/bench_replay.py" $FLAG --callgrind "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
declare -A PER
for kind in plain $KINDS; do
  a=$(ir "$kind" $N1); b=$(ir "$kind" $N2)
  PER[$kind]=$(( (b - a) / (N2 - N1) ))
  echo "$kind: ${PER[$kind]} instructions per call"
done
for kind in $KINDS; do
  echo "$kind adds $(( PER[$kind] - PER[plain] )) instructions per call ($MODE)"
done
