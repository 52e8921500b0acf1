import FEREngine
import FERIO
import FERModels

/// The arithmetic to run a network in: `auto` (the fastest measured on this CPU among those it runs
/// natively, cached per CPU and work: see `AutoPrecision`), or fp32, bf16, int8 by name.
public enum PrecisionChoice: String, CaseIterable, Sendable {
    case auto, fp32, bf16, int8

    /// The precision asked for, or an error saying why it cannot run here; nil for auto, which is
    /// measured. `option` names the setting in the error (`--precision`, `--detector-precision`).
    public func explicit(hasInt8Ranges: Bool, option: String = "--precision") throws -> InferencePrecision? {
        switch self {
        case .fp32: return .fp32
        case .bf16:
            guard CPUFeatures.bf16 else {
                throw RecognizerError.precisionUnavailable(option: option, reason: "bf16 needs a CPU with AVX-512 BF16 or AMX; this one (\(CPU.measuredOn)) has neither: use fp32 or int8")
            }
            return .bf16
        case .int8:
            guard hasInt8Ranges else { throw RecognizerError.precisionUnavailable(option: option, reason: "int8: \(InferenceError.notCalibrated)") }
            return .int8
        case .auto: return nil
        }
    }
}
