#!/usr/bin/env bash
# Where a training step's time goes: trains the default model's network for a few steps with
# ONEDNN_VERBOSE=1 and sums oneDNN's own execution times by primitive, direction and kernel, against
# the epoch's wall time (what is left is outside oneDNN: data, loss, optimiser, Swift glue).
# Usage: benchmarks/profile_training.sh FER2013.csv.gz [steps] [extra fer train options...]
#   e.g. benchmarks/profile_training.sh fer2013.csv.gz 20 --precision bf16
# Run it with nothing else on the machine (pause a training run with kill -STOP).
# Environment: FER, the fer binary (default .build/release/fer).
set -euo pipefail
data=${1:?usage: profile_training.sh fer2013.csv.gz [steps] [fer train options...]}
steps=${2:-20}
shift $(( $# >= 2 ? 2 : 1 ))
fer=${FER:-"$(cd "$(dirname "$0")/.." && pwd)/.build/release/fer"}
source "$(dirname "$0")/cpu_description.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(cpu_description)"
echo "fer train: vgg width 48, FC 1024, 40x40, batch 64, $steps steps, validation on 64 faces; options: ${*:-none}"
ONEDNN_VERBOSE=1 "$fer" train --data "$data" --preset vgg --width 48 --fc-width 1024 --input-size 40 \
    --epochs 1 --limit $(( steps * 64 )) --val-limit 64 --batch-size 64 --quiet "$@" --out "$tmp/run" > "$tmp/log" 2>&1 ||
    { tail -5 "$tmp/log" >&2; exit 1; }
grep -v '^onednn_verbose' "$tmp/log" | grep -E 'precision|img/s' || true
# onednn_verbose,exec,cpu,KIND,IMPLEMENTATION,PROP,memory...,attributes,auxiliary,problem,TIME_MS
awk -F, '$1 == "onednn_verbose" && $2 == "exec" {
        key = $4 " " $6 " " $5; ms[key] += $NF; n[key]++; total += $NF
    }
    END {
        printf "%-60s %7s %10s %6s\n", "primitive direction kernel", "calls", "ms", "share"
        for (k in ms) printf "%-60s %7d %10.1f %5.1f%%\n", k, n[k], ms[k], 100 * ms[k] / total | "sort -k5,5nr"
        close("sort -k5,5nr")
        printf "%-60s %7s %10.1f\n", "all oneDNN primitives", "", total
    }' "$tmp/log"
