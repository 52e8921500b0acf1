# Sourced by the benchmark scripts: cpu_description prints the CPU as `fer bench` does
# (CPU.description in Sources/FERIO/CPU.swift): model, cores, and the vector extensions that
# change which kernels oneDNN runs, in the same order.
cpu_description() {
    local flags isa=() f
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for f in avx2 avx512f avx512_vnni avx512_bf16 amx_bf16; do
        [[ $flags == *" $f "* ]] && isa+=("$f")
    done
    echo "$(lscpu | sed -n "s/^Model name: *//p"), $(nproc) cores, ${isa[*]:-no AVX2}"
}
