import CDNNL
import Foundation

/// Arithmetic an inference network runs in.
public enum InferencePrecision: String, CaseIterable, Codable, Sendable {
    /// float32 throughout.
    case fp32
    /// bf16 activations and weights in the convolutions and dense layers, f32 accumulation and logits.
    case bf16
    /// u8 activations and s8 weights (one scale per output channel), i32 accumulation, f32 logits;
    /// activation ranges calibrated on training faces (`InferenceNetwork.calibrationRanges`).
    case int8
}

public enum InferenceError: Error, CustomStringConvertible, Equatable {
    case unsupportedLayer(String)
    case notCalibrated
    case calibrationMismatch(expected: Int, found: Int)
    case badRange(index: Int, value: Float)

    public var description: String {
        switch self {
        case .unsupportedLayer(let s): return "\(s) cannot be lowered for inference (conv, dense, batch norm, ReLU, PReLU, pooling, dropout only)"
        case .notCalibrated: return "int8 needs activation ranges: run `fer calibrate-int8` first (with --mtcnn for the detector)"
        case .calibrationMismatch(let e, let f): return "the model's int8 ranges hold \(f) values; its network needs \(e)"
        case .badRange(let i, let v): return "the model's int8 range \(i) is \(v); ranges must be finite and non-negative (run fer calibrate-int8 again)"
        }
    }
}

/// A trained network lowered for inference: each batch norm folded into the convolution or dense
/// layer before it, each ReLU fused into that layer as a post-op, dropout removed, and every
/// convolution and dense layer run as one oneDNN primitive in fp32, bf16 or int8.
///
///   conv/dense [+ batch norm] [+ ReLU]  ->  one primitive     pooling, PReLU  ->  one primitive each
///
/// int8: activations are u8 (scale 255/max) where a ReLU made them non-negative, s8 (scale 127/max)
/// where they can be negative (a signed input, a PReLU's); max is the calibrated largest |value|.
/// Weights are s8 with scale 127/max|W_o| per output channel, and the last layer writes f32
/// logits. oneDNN folds all scales into one per channel:
///   y_q = (s_out / (s_in * s_w[o])) * (sum x_q * w_q + b * s_in * s_w[o])
public final class InferenceNetwork {
    enum Op {
        case weighted(WeightedOp)
        case pool(Pool2D)
        case prelu(PReLUOp)
    }

    let ops: [Op]
    public let precision: InferencePrecision
    public let inputShape: [Int]

    /// Lowers `network` (a trained `Sequential`; the weights are copied) for inputs of `inputShape`
    /// (batch dimension included; any batch size runs). `ranges`: int8 calibration
    /// (`calibrationRanges` of a calibrated network), two values per weighted layer. `signedInput`:
    /// the input can be negative (int8 quantizes it to s8 rather than u8).
    public init(_ network: Sequential, inputShape: [Int], precision: InferencePrecision, ranges: [Float]? = nil,
                signedInput: Bool = false) throws {
        var ops: [Op] = []
        var shape = inputShape
        for layer in Self.flatten(network) {
            switch layer {
            case let c as Conv2D:
                ops.append(.weighted(WeightedOp(conv: c)))
            case let d as Dense:
                ops.append(.weighted(WeightedOp(dense: d, inputShape: shape)))
            case let bn as BatchNorm:
                guard case .weighted(let w)? = ops.last, !w.relu else { throw InferenceError.unsupportedLayer("a batch norm not right after a convolution or dense layer") }
                w.fold(bn)
            case is ReLU:
                guard case .weighted(let w)? = ops.last, !w.relu else { throw InferenceError.unsupportedLayer("a ReLU not right after a convolution or dense layer") }
                w.relu = true
            case let p as Pool2D:
                ops.append(.pool(p))
            case let p as PReLU:
                ops.append(.prelu(PReLUOp(p)))
            case is Dropout, is Flatten:
                continue  // identity in inference; dense layers read 4-D inputs directly, so the shape stays
            default:
                throw InferenceError.unsupportedLayer(layer.summary)
            }
            shape = layer.outputShape(shape)
        }
        // Which activations can be negative: the input if so declared, and what a layer without a
        // ReLU writes (a PReLU or a pooling keeps the sign its input had).
        var signed = signedInput
        for op in ops {
            if case .weighted(let w) = op { w.inputSigned = signed; signed = !w.relu }
        }
        self.ops = ops
        self.precision = precision
        self.inputShape = inputShape
        let weighted = weightedOps
        weighted.last?.isLast = true
        if precision == .int8 {
            guard let r = ranges else { throw InferenceError.notCalibrated }
            guard r.count == 2 * weighted.count else { throw InferenceError.calibrationMismatch(expected: 2 * weighted.count, found: r.count) }
            if let bad = r.firstIndex(where: { !($0.isFinite && $0 >= 0) }) { throw InferenceError.badRange(index: bad, value: r[bad]) }
            for (i, w) in weighted.enumerated() { w.inputMax = r[2 * i]; w.outputMax = r[2 * i + 1] }
        }
    }

    static func flatten(_ layer: Layer) -> [Layer] {
        if let s = layer as? Sequential { return s.layers.flatMap(flatten) }
        return [layer]
    }

    var weightedOps: [WeightedOp] { ops.compactMap { if case .weighted(let w) = $0 { return w } else { return nil } } }

    /// Logits [N, classes] (f32, plain) for a batch [N, ...inputShape.dropFirst()] (f32).
    public func forward(_ x: Tensor) -> Tensor {
        var t = x
        var scale: Float?  // the quantization scale of `t` when it holds u8
        for op in ops {
            switch op {
            case .weighted(let w): (t, scale) = w.forward(t, scale: scale, precision: precision)
            case .pool(let p): t = p.forward(t, mode: .inference)
            case .prelu(let p): t = p.forward(t)
            }
        }
        return t.laidOut(as: .plain(t.shape))
    }

    /// The int8 activation ranges: runs this (fp32) network over `batches` and records, for every
    /// weighted layer, the largest input |value| and the largest output |value| (after its ReLU;
    /// before and after the PReLU that follows it) seen.
    /// Stored with the model, they make `precision: .int8` possible.
    public func calibrationRanges(_ batches: [Tensor]) -> [Float] {
        let weighted = weightedOps
        var ranges = [Float](repeating: 0, count: 2 * weighted.count)
        for x in batches {
            var t = x
            var k = 0
            for op in ops {
                switch op {
                case .weighted(let w):
                    ranges[2 * k] = max(ranges[2 * k], Self.largestMagnitude(t))
                    t = w.forward(t, scale: nil, precision: .fp32).0
                    ranges[2 * k + 1] = max(ranges[2 * k + 1], Self.largestMagnitude(t))
                    k += 1
                case .pool(let p): t = p.forward(t, mode: .inference)
                case .prelu(let p):
                    // The layer before writes its output with one scale, and the PReLU keeps it:
                    // the range must hold both sides (a slope above 1 makes the output larger).
                    t = p.forward(t)
                    if k > 0 { ranges[2 * k - 1] = max(ranges[2 * k - 1], Self.largestMagnitude(t)) }
                }
            }
        }
        return ranges
    }

    /// max |x| over an f32 tensor (calibration runs the network in fp32).
    static func largestMagnitude(_ t: Tensor) -> Float { t.storage.reduce(0) { max($0, abs($1)) } }
}
