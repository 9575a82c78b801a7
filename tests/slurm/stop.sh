#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started, by the pids it wrote (never by name), slurmd first.
set -uo pipefail
DIR=${HYPERFLUX_SLURM_DIR:-/tmp/hyperflux-slurm}
[ -s "$DIR/pids" ] || { echo ">>> tests/slurm/stop.sh: nothing to stop ($DIR/pids is empty or missing)"; exit 0; }
# jobs still in this test cluster's queue are cancelled (by id) first, so that no job step outlives slurmd
if ids=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ') && [ -n "${ids// }" ]; then
  echo ">>> tests/slurm/stop.sh: scancel $ids"
  # shellcheck disable=SC2086
  scancel $ids
  for _ in $(seq 30); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
fi
tac "$DIR/pids" | while read -r name pid; do
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then   # that pid is still the daemon it was
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    echo ">>> tests/slurm/stop.sh: stopped $name (pid $pid)"
  fi
done
: > "$DIR/pids"
