/// The arithmetic a network runs in: the one type for inference, training, MTCNN and the benchmarks.
/// What `auto` picks among is `AutoPrecision`'s; which CPU runs which is said here, once.
public enum Precision: String, CaseIterable, Codable, Sendable {
    /// float32 throughout.
    case fp32
    /// bf16 inputs, weights and outputs of the convolutions and dense layers, f32 accumulation,
    /// biases and logits. In training the parameters, optimizer state and loss stay f32 (mixed
    /// precision without loss scaling: bf16 has f32's exponent range).
    case bf16
    /// Inference only: u8 activations (s8 where they can be negative) and s8 weights, one scale per
    /// channel, i32 accumulation, f32 logits; activation ranges calibrated on representative inputs
    /// (`InferenceNetwork.calibrationRanges`).
    case int8

    /// Whether a network can train in it.
    public var trains: Bool { self != .int8 }

    /// Whether this CPU runs it at full speed: fp32 always, bf16 with AVX-512 BF16 (or AMX), int8
    /// with oneDNN's JIT int8 kernels (AVX2 or later). `auto` picks among these only.
    public var isNative: Bool {
        switch self {
        case .fp32: return true
        case .bf16: return CPUFeatures.bf16
        case .int8: return CPUFeatures.int8
        }
    }

    /// Why oneDNN cannot run it on this CPU at all; nil where it can, natively or emulated.
    public var unavailableReason: String? {
        guard self == .bf16, !CPUFeatures.bf16Supported else { return nil }
        return "bf16 needs a CPU with AVX-512 (natively with AVX-512 BF16 or AMX); oneDNN's kernels here are \(CPUFeatures.kernelISA): use fp32 or auto"
    }

    /// A warning for an arithmetic that runs here, but emulated and slow; nil where it runs natively.
    public var emulationWarning: String? {
        guard self == .bf16, unavailableReason == nil, !isNative else { return nil }
        return "this CPU has no AVX-512 BF16: oneDNN emulates bf16 on AVX-512, about 4x slower than fp32; fine for checking a bf16 recipe, not for speed"
    }
}
