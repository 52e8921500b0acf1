import CDNNL
import Foundation

public enum InferenceError: Error, CustomStringConvertible, Equatable {
    case unsupportedLayer(String)
    case notCalibrated
    case calibrationMismatch(expected: Int, found: Int)
    case badRange(index: Int, value: Float)

    public var description: String {
        switch self {
        case .unsupportedLayer(let s): return "\(s) cannot be lowered for inference (conv, dense, batch norm, ReLU, PReLU, pooling, dropout only)"
        case .notCalibrated: return "int8 needs activation ranges: run `fer calibrate int8` first (with --mtcnn for the detector)"
        case .calibrationMismatch(let e, let f): return "the model's int8 ranges hold \(f) values; its network needs \(e)"
        case .badRange(let i, let v): return "the model's int8 range \(i) is \(v); ranges must be finite and non-negative (run fer calibrate int8 again)"
        }
    }
}

/// A trained network lowered for inference: each batch norm folded into the convolution or dense
/// layer before it, each ReLU fused into that layer as a post-op, dropout removed, and every
/// convolution and dense layer run as one oneDNN primitive in fp32, bf16 or int8 (pooling and
/// PReLU run the trained layers' own inference primitives, on whatever type they are given).
///
///   conv/dense [+ batch norm] [+ ReLU]  ->  one primitive     pooling, PReLU  ->  one primitive each
///
/// int8: activations are u8 (scale 255/max) where a ReLU made them non-negative, s8 (scale 127/max)
/// where they can be negative (a signed input, a PReLU's); max is the calibrated largest |value|
/// of each channel, so every channel uses its 8 bits whatever the others' range.
/// Weights are s8 with scale 127/max|W_o| per output channel, and the last layer writes f32
/// logits. oneDNN folds all scales into one per channel:
///   y_q[o] = (s_out[o] / s_w[o]) * (sum_c x_q[c] * w_q[o, c] + b[o] * s_w[o]),
///   w_q[o, c] = round(s_w[o] * w[o, c] / s_in[c])
public final class InferenceNetwork {
    enum Op {
        case weighted(WeightedOp)
        case pool(Pool2D)
        case prelu(PReLU)
    }

    let ops: [Op]
    public let precision: Precision
    public let inputShape: [Int]

    /// Lowers `network` (a trained `Sequential`; the weights are copied) for inputs of `inputShape`
    /// (batch dimension included; any batch size runs). `ranges`: int8 calibration
    /// (`calibrationRanges` of a calibrated network): per weighted layer, the input's range and one
    /// per output channel (or one for all). `signedInput`: the input can be negative (int8
    /// quantizes it to s8 rather than u8).
    public init(_ network: Sequential, inputShape: [Int], precision: Precision, ranges: [Float]? = nil,
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
                // Its own primitive, the trained layer's: oneDNN 2.6 runs a PReLU post-op on a
                // convolution with its reference kernel (~200x slower) and not at all on an inner
                // product. PReLU(s x) = s PReLU(x) for s > 0, so an s8 input's scales carry over.
                ops.append(.prelu(p))
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
            if let bad = r.firstIndex(where: { !($0.isFinite && $0 >= 0) }) { throw InferenceError.badRange(index: bad, value: r[bad]) }
            // Per layer: the input's range, then one output range per channel (what
            // `calibrationRanges` measures) or one for all channels (models calibrated before).
            let perChannel = weighted.reduce(0) { $0 + 1 + $1.outChannels }
            guard r.count == perChannel || r.count == 2 * weighted.count else {
                throw InferenceError.calibrationMismatch(expected: perChannel, found: r.count)
            }
            var at = 0
            for w in weighted {
                let n = r.count == perChannel ? w.outChannels : 1
                w.inputMax = r[at]
                // A channel calibration never saw active gets a usable scale all the same.
                let outputs = r[(at + 1)...(at + n)], largest = outputs.max() ?? 0
                w.outputMax = outputs.map { max($0, largest / 100, 1e-6) }
                at += 1 + n
            }
        }
    }

    static func flatten(_ layer: Layer) -> [Layer] {
        if let s = layer as? Sequential { return s.layers.flatMap(flatten) }
        return [layer]
    }

    /// Output channels of each convolution and dense layer, in order (how calibration ranges are laid out).
    public var outputChannels: [Int] { weightedOps.map(\.outChannels) }

    var weightedOps: [WeightedOp] { ops.compactMap { if case .weighted(let w) = $0 { return w } else { return nil } } }

    /// Logits [N, classes] (f32) for a batch [N, ...inputShape.dropFirst()] (f32): row-major, or with
    /// `plain` false in the layout the last layer wrote (a caller that reads it as it lies, such as
    /// `Tensor.channelsLastValues`, saves a reorder).
    public func forward(_ x: Tensor, plain: Bool = true) -> Tensor {
        var t = x
        var scales: [Float]?  // the quantization scales of `t` when it holds u8 or s8
        for op in ops {
            switch op {
            case .weighted(let w): (t, scales) = w.forward(t, scales: scales, precision: precision)
            case .pool(let p): t = p.forward(t, mode: .inference)
            case .prelu(let p): t = p.forward(t, mode: .inference)
            }
        }
        return plain ? t.laidOut(as: .plain(t.shape)) : t
    }

    /// The int8 activation ranges: runs this (fp32) network over `batches` and records, for every
    /// weighted layer, the largest input |value|, then the largest output |value| of each output
    /// channel (after its ReLU; before and after the PReLU that follows it).
    /// Stored with the model, they make `precision: .int8` possible.
    public func calibrationRanges(_ batches: [Tensor]) -> [Float] {
        let weighted = weightedOps
        var inputs = [Float](repeating: 0, count: weighted.count)
        var outputs = weighted.map { [Float](repeating: 0, count: $0.outChannels) }
        for x in batches {
            var t = x
            var k = 0
            for op in ops {
                switch op {
                case .weighted(let w):
                    inputs[k] = max(inputs[k], Self.channelMaxima(t).max() ?? 0)
                    t = w.forward(t, scales: nil, precision: .fp32).0
                    outputs[k] = zip(outputs[k], Self.channelMaxima(t)).map { max($0, $1) }
                    k += 1
                case .pool(let p): t = p.forward(t, mode: .inference)
                case .prelu(let p):
                    // The layer before writes its output with one scale per channel, and the
                    // PReLU keeps it: the range must hold both sides (a slope above 1 enlarges).
                    t = p.forward(t, mode: .inference)
                    if k > 0 { outputs[k - 1] = zip(outputs[k - 1], Self.channelMaxima(t)).map { max($0, $1) } }
                }
            }
        }
        return zip(inputs, outputs).flatMap { [$0] + $1 }
    }

    /// max |x| per channel (axis 1) of an f32 tensor (calibration runs the network in fp32).
    static func channelMaxima(_ t: Tensor) -> [Float] {
        let v = t.plainValues(), channels = t.shape[1], spatial = t.shape.dropFirst(2).reduce(1, *)
        var m = [Float](repeating: 0, count: channels)
        for (i, x) in v.enumerated() {
            let c = (i / spatial) % channels
            m[c] = max(m[c], abs(x))
        }
        return m
    }
}
