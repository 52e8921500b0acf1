#!/usr/bin/env bash
# Issue 33: what oneDNN 3.x would change on MTCNN's hot spots. Builds benchmarks/onednn_prelu_fusion.c
# against Debian's oneDNN 2.6 and against oneDNN 3.2 (pip's CPU-only build with GNU OpenMP, as
# Debian's: onednn-cpu-gomp and onednn-devel-cpu-gomp 2023.2.0, fetched once into a cache folder),
# takes the convolution + PReLU pairs MTCNN runs on PHOTO (`fer predict` with oneDNN's verbose
# output, the second of two runs), and times each pair both ways under both versions, int8 and f32.
#
#   benchmarks/onednn3_compare.sh [PHOTO]     (default: the first london-dev portrait)
# Environment: FER (default .build/debug/fer), ONEDNN3_CACHE (default ~/.cache/swift-fer/onednn3);
# ONEDNN_MAX_CPU_ISA=AVX2 gives both versions AVX2's kernels.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/cpu_description.sh"
fer=${FER:-.build/debug/fer}
photo=${1:-$(ls "$here"/../../shared/data/london-dev/happy/*.jpg 2>/dev/null | head -1)}
[ -f "$photo" ] || { echo "onednn3_compare: no photo (give one)" >&2; exit 1; }
[ -x "$fer" ] || { echo "onednn3_compare: no fer binary at $fer (build first, or set FER)" >&2; exit 1; }
cache=${ONEDNN3_CACHE:-$HOME/.cache/swift-fer/onednn3}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

if [ ! -f "$cache/lib/libdnnl.so.3" ]; then
    echo "fetching oneDNN 3.2 (pip: onednn-cpu-gomp, onednn-devel-cpu-gomp 2023.2.0) into $cache" >&2
    python3 -m pip download -q --no-deps -d "$work/wheels" onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0
    mkdir -p "$cache.part"
    for w in "$work"/wheels/*.whl; do unzip -qo "$w" -d "$work/unpacked"; done
    cp -r "$work"/unpacked/onednn_cpu_gomp-*.data/data/lib "$work"/unpacked/onednn_devel_cpu_gomp-*.data/data/include "$cache.part/"
    rm -rf "$cache" && mv "$cache.part" "$cache"
fi
gcc -O2 -o "$work/v2" "$here/onednn_prelu_fusion.c" -ldnnl
gcc -O2 -o "$work/v3" "$here/onednn_prelu_fusion.c" -I"$cache/include" -L"$cache/lib" -l:libdnnl.so.3 -Wl,-rpath,"$cache/lib"

# MTCNN's pairs on the photo: each convolution directly followed by a PReLU, as "N IC H OC K".
ONEDNN_VERBOSE=1 "$fer" predict "$photo" "$photo" 2>&1 | grep '^onednn_verbose,exec' > "$work/verbose"
python3 - "$work/verbose" > "$work/shapes" <<'PY'
import re, sys
rows = [l.split(',') for l in open(sys.argv[1]).read().splitlines()]
pairs = []
for a, b in zip(rows, rows[1:]):
    m = re.match(r'mb(\d+)_ic(\d+)oc(\d+)_ih(\d+)oh\d+kh(\d+)', a[-2])
    if a[3] == 'convolution' and b[3] == 'prelu' and m:
        n, ic, oc, h, k = m.groups()
        pairs.append(f'{n} {ic} {h} {oc} {k}')
print('\n'.join(pairs[len(pairs) // 2:]))  # the second run
PY
echo "CPU: $(cpu_description)${ONEDNN_MAX_CPU_ISA:+, oneDNN kernels capped at $ONEDNN_MAX_CPU_ISA}"
echo "photo: $photo ($(wc -l < "$work/shapes") convolution + PReLU pairs)"
for type in s8 f32; do
    for v in v2 v3; do "$work/$v" "$work/shapes" $type; echo; done
done
