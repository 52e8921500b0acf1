import CDNNL
import Foundation

/// What this CPU runs fast, as oneDNN sees it: bf16 instructions (AVX-512 BF16 or AMX) for bf16
/// training and inference, VNNI (AVX-512 or AVX2) for int8 inference.
public enum CPUFeatures {
    static var isa: UInt32 { dnnl_get_effective_cpu_isa().rawValue }

    /// Native bf16 dot products: bf16 is then faster than fp32.
    public static var bf16: Bool { isa & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue }

    /// oneDNN's JIT int8 kernels: AVX2 or later. Without VNNI they multiply u8 by s8 in pairs
    /// (vpmaddubsw; weights kept to 7 bits, `WeightedOp.weightLevels`), still about twice fp32's speed
    /// at batch 1 on a 2-core AVX2 EPYC (docs/benchmarks.md); `AutoPrecision` times it either way.
    public static var int8: Bool { isa & dnnl_cpu_isa_avx2.rawValue == dnnl_cpu_isa_avx2.rawValue }

    /// 8-bit dot products in one instruction (VNNI): int8's fastest kernels.
    public static var vnni: Bool {
        isa & dnnl_cpu_isa_avx512_core_vnni.rawValue == dnnl_cpu_isa_avx512_core_vnni.rawValue
            || isa & dnnl_cpu_isa_avx2_vnni.rawValue == dnnl_cpu_isa_avx2_vnni.rawValue
    }

    /// oneDNN can run bf16 at all: natively, or emulated on AVX-512 without BF16 (AVX2 alone cannot).
    public static var bf16Supported: Bool { isa & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue }

    /// The newest instruction set oneDNN's kernels use here, by oneDNN's name (`avx2`,
    /// `avx512_core_bf16`, ...): the CPU's own, or less where `ONEDNN_MAX_CPU_ISA` caps it.
    public static var kernelISA: String {
        let names: [(dnnl_cpu_isa_t, String)] = [
            (dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"), (dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"),
            (dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"), (dnnl_cpu_isa_avx512_core, "avx512_core"),
            (dnnl_cpu_isa_avx2_vnni, "avx2_vnni"), (dnnl_cpu_isa_avx2, "avx2"), (dnnl_cpu_isa_avx, "avx"), (dnnl_cpu_isa_sse41, "sse41")]
        return names.first { isa & $0.0.rawValue == $0.0.rawValue }?.1 ?? "none"
    }

    /// "oneDNN kernels capped at avx2" where `ONEDNN_MAX_CPU_ISA` caps them below the CPU's own, else nil.
    public static var kernelCap: String? {
        let env = ProcessInfo.processInfo.environment
        guard env["ONEDNN_MAX_CPU_ISA"] ?? env["DNNL_MAX_CPU_ISA"] != nil else { return nil }
        return "oneDNN kernels capped at \(kernelISA)"
    }
}
