#!/usr/bin/env bash
# Data-parallel scaling on this machine: training steps/s of each preset alone and on 2 ranks
# (1 oneDNN thread per rank, global batch 64, the same images), and what the allreduce costs.
# Usage: benchmarks/mpi_scaling.sh FER2013.csv.gz [images]   (run with nothing else on the machine)
set -euo pipefail
data=${1:?usage: mpi_scaling.sh fer2013.csv.gz [images]}
images=${2:-3200}
fer="$(cd "$(dirname "$0")/.." && pwd)/.build/release/fer"
source "$(dirname "$0")/cpu_description.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "CPU: $(cpu_description); global batch 64; $images images; 1 thread per rank"
printf '%-8s %12s %12s %9s %14s %14s %12s\n' preset "1 rank st/s" "2 ranks st/s" speedup "bytes/step" "allreduce ms" "params"
for spec in "mlp" "cnn" "vgg --width 48 --fc-width 1024 --input-size 40"; do
    name=${spec%% *}
    args=(train --data "$data" --preset $spec --epochs 1 --limit "$images" --val-limit 64 --batch-size 64 --threads 1 --quiet)
    one=$("$fer" "${args[@]}" --out "$tmp/$name-1" 2>&1)
    two=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$fer" "${args[@]}" --out "$tmp/$name-2" 2>&1)
    rate() { sed -n 's/.*, \([0-9.]*\) img\/s$/\1/p' <<<"$1" | tail -1; }
    r1=$(rate "$one"); r2=$(rate "$two")
    mb=$(sed -n 's/^allreduce: \([0-9.]*\) MB per rank in \([0-9.]*\) s$/\1/p' <<<"$two")
    secs=$(sed -n 's/^allreduce: \([0-9.]*\) MB per rank in \([0-9.]*\) s$/\2/p' <<<"$two")
    params=$(sed -n 's/.*, \([0-9]*\) parameters,.*/\1/p' <<<"$one" | head -1)
    steps=$(( images / 64 ))
    awk -v n="$name" -v r1="$r1" -v r2="$r2" -v mb="$mb" -v s="$secs" -v st="$steps" -v p="$params" 'BEGIN {
        printf "%-8s %12.2f %12.2f %8.2fx %14d %14.2f %12d\n", n, r1 / 64, r2 / 64, r2 / r1, mb * 1e6 / st, 1000 * s / st, p }'
done
