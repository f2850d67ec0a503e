#!/usr/bin/env bash
# Instructions PrometheusSink.handle_exchange costs per call, under callgrind (load-insensitive).
# Usage: benchmarks/callgrind_sink.sh nonstream|stream   (SRC=path/to/src measures another tree)
# Two runs (100 and 5100 calls after the same warm-up), differenced to remove start-up.
set -euo pipefail
MODE=${1:?usage: callgrind_sink.sh nonstream|stream}
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=${PY:-$HERE/../.venv/bin/python}
SRC=${SRC:-$HERE/../src}
ir() {
  PYTHONHASHSEED=0 PYTHONPATH="$SRC" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$PY" "$HERE/_sink_calls.py" "$MODE" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(ir 100); b=$(ir 5100)
echo "handle_exchange: $(( (b - a) / 5000 )) instructions per call ($MODE)"
