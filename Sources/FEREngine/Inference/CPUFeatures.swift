import CDNNL

/// What this CPU runs fast, as oneDNN sees it: bf16 instructions (AVX-512 BF16 or AMX) for bf16
/// training and inference, VNNI (AVX-512 or AVX2) for int8 inference.
public enum CPUFeatures {
    static var isa: UInt32 { dnnl_get_effective_cpu_isa().rawValue }

    /// Native bf16 dot products: bf16 is then faster than fp32.
    public static var bf16: Bool { isa & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue }

    /// 8-bit dot products (VNNI): int8 is then faster than fp32.
    public static var vnni: Bool {
        isa & dnnl_cpu_isa_avx512_core_vnni.rawValue == dnnl_cpu_isa_avx512_core_vnni.rawValue
            || isa & dnnl_cpu_isa_avx2_vnni.rawValue == dnnl_cpu_isa_avx2_vnni.rawValue
    }

    /// oneDNN can run bf16 at all: natively, or emulated on AVX-512 without BF16 (AVX2 alone cannot).
    public static var bf16Supported: Bool { isa & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue }
}
