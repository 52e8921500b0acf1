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
        case .unsupportedLayer(let s): return "\(s) cannot be lowered for bf16/int8 inference (conv, dense, batch norm, ReLU, pooling, dropout only)"
        case .notCalibrated: return "int8 needs activation ranges: run `fer calibrate-int8` on the model first"
        case .calibrationMismatch(let e, let f): return "the model's int8 ranges hold \(f) values; its network needs \(e)"
        case .badRange(let i, let v): return "the model's int8 range \(i) is \(v); ranges must be finite and non-negative (run fer calibrate-int8 again)"
        }
    }
}

/// A trained network lowered for inference: each batch norm folded into the convolution or dense
/// layer before it, each ReLU fused into that layer as a post-op, dropout removed, and every
/// convolution and dense layer run as one oneDNN primitive in fp32, bf16 or int8.
///
///   conv/dense [+ batch norm] [+ ReLU]  ->  one primitive     pooling  ->  as trained
///
/// int8: the input is quantized to u8 with scale 255/max, every hidden layer writes u8 with the
/// scale of its calibrated output range, weights are s8 with scale 127/max|W_o| per output channel,
/// and the last layer writes f32 logits. oneDNN folds all scales into one per channel:
///   y_q = (s_out / (s_in * s_w[o])) * (sum x_q * w_q + b * s_in * s_w[o])
public final class InferenceNetwork {
    enum Op {
        case weighted(WeightedOp)
        case pool(Pool2D)
    }

    let ops: [Op]
    public let precision: InferencePrecision
    public let inputShape: [Int]

    /// Lowers `network` (a trained `Sequential`; the weights are copied) for inputs of `inputShape`
    /// (batch dimension included; any batch size runs). `ranges`: int8 calibration
    /// (`calibrationRanges` of a calibrated network), two values per weighted layer.
    public init(_ network: Sequential, inputShape: [Int], precision: InferencePrecision, ranges: [Float]? = nil) throws {
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
            case is Dropout, is Flatten:
                continue  // identity in inference; dense layers read 4-D inputs directly, so the shape stays
            default:
                throw InferenceError.unsupportedLayer(layer.summary)
            }
            shape = layer.outputShape(shape)
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
            // u8 activations hold no negative values: every hidden layer must end in a ReLU.
            if weighted.dropLast().contains(where: { !$0.relu }) { throw InferenceError.unsupportedLayer("a hidden layer without a ReLU (int8 activations here are unsigned)") }
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
            }
        }
        return t.laidOut(as: .plain(t.shape))
    }

    /// The int8 activation ranges: runs this (fp32) network over `batches` and records, for every
    /// weighted layer, the largest input value and the largest output value (after ReLU) seen.
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
                    ranges[2 * k] = max(ranges[2 * k], t.storage.max() ?? 0)  // f32: the network runs in fp32
                    t = w.forward(t, scale: nil, precision: .fp32).0
                    ranges[2 * k + 1] = max(ranges[2 * k + 1], t.storage.max() ?? 0)
                    k += 1
                case .pool(let p): t = p.forward(t, mode: .inference)
                }
            }
        }
        return ranges
    }
}

/// One convolution or dense layer with the batch norm and ReLU after it folded in, and its
/// primitives per (input layout, precision).
final class WeightedOp {
    enum Kind { case conv(stride: Int, padding: Int), dense }
    let kind: Kind
    /// Folded weights, plain (oihw, or [out, ...input dims] for dense), and bias.
    var weight: [Float]
    let weightShape: [Int]
    var bias: [Float]
    var relu = false
    var isLast = false
    /// int8 calibration: largest input and output values. The input range is used when the input
    /// arrives as f32 (the network's input); a u8 input brings the scale its producer wrote it with.
    var inputMax: Float = 0, outputMax: Float = 0

    private struct Plan {
        let primitive: Primitive
        let weights: Tensor
        let bias: Tensor
        let srcScale: Float?
        let dstScale: Float?
    }
    private var plans: [Data: Plan] = [:]
    /// Weights in a primitive's layout and type, shared by the plans of every batch size.
    private var laidOutWeights: [Data: Tensor] = [:]

    init(conv c: Conv2D) {
        kind = .conv(stride: c.stride, padding: c.padding)
        weight = Array(c.weight.values)
        weightShape = c.weight.value.shape
        bias = Array(c.bias.values)
    }

    init(dense d: Dense, inputShape: [Int]) {
        kind = .dense
        weight = Array(d.weight.values)
        weightShape = [d.outFeatures] + inputShape.dropFirst()
        bias = Array(d.bias.values)
    }

    var outChannels: Int { weightShape[0] }

    /// y = BN(W x + b): W_o *= g_o, b_o = (b_o - mean_o) * g_o + shift_o, g_o = scale_o / sqrt(var_o + eps).
    func fold(_ bn: BatchNorm) {
        let per = weight.count / outChannels
        for o in 0..<outChannels {
            let g = bn.scale.values[o] / (bn.runningVariance.values[o] + bn.epsilon).squareRoot()
            for i in 0..<per { weight[o * per + i] *= g }
            bias[o] = (bias[o] - bn.runningMean.values[o]) * g + bn.shift.values[o]
        }
        if bn.fusedReLU { relu = true }
    }

    func outputShape(_ s: [Int]) -> [Int] {
        switch kind {
        case .dense: return [s[0], outChannels]
        case .conv(let st, let p):
            let k = weightShape[2]
            return [s[0], outChannels, (s[2] + 2 * p - k) / st + 1, (s[3] + 2 * p - k) / st + 1]
        }
    }

    func forward(_ x: Tensor, scale: Float?, precision: InferencePrecision) -> (Tensor, Float?) {
        var key = x.desc.key
        key.append(contentsOf: precision.rawValue.utf8)
        if plans[key] == nil, plans.count >= 64 { plans.removeAll() }  // endless batch sizes stay bounded
        let plan = plans[key] ?? makePlan(x, inputScale: scale, precision)
        plans[key] = plan
        // An f32 input is quantized on its way in; a u8 one already is.
        let src = x.laidOut(as: plan.primitive.desc(dnnl_query_src_md), scale: x.desc.dataType == dnnl_u8 ? 1 : plan.srcScale ?? 1)
        let y = Tensor(desc: plan.primitive.desc(dnnl_query_dst_md), zeroed: false)
        plan.primitive.execute([(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, plan.weights), (DNNL_ARG_BIAS, plan.bias), (DNNL_ARG_DST, y)])
        return (y, plan.dstScale)
    }

    /// `inputScale`: the scale a u8 input was written with (nil for an f32 input, which is then
    /// quantized with its calibrated range).
    private func makePlan(_ x: Tensor, inputScale: Float?, _ precision: InferencePrecision) -> Plan {
        let outShape = outputShape(x.shape)
        // Element types: the last layer always writes f32 logits; int8 hidden layers write u8, so
        // they need a ReLU (non-negative outputs) and otherwise write f32.
        let (srcType, weiType, dstType): (dnnl_data_type_t, dnnl_data_type_t, dnnl_data_type_t)
        switch precision {
        case .fp32: (srcType, weiType, dstType) = (dnnl_f32, dnnl_f32, dnnl_f32)
        case .bf16: (srcType, weiType, dstType) = (dnnl_bf16, dnnl_bf16, isLast ? dnnl_f32 : dnnl_bf16)
        case .int8: (srcType, weiType, dstType) = (dnnl_u8, dnnl_s8, isLast || !relu ? dnnl_f32 : dnnl_u8)
        }
        var src = MemoryDesc.any(x.shape, srcType)
        var w = MemoryDesc.any(weightShape, weiType)
        var b = MemoryDesc.plain([outChannels])
        var dst = isLast ? MemoryDesc.plain(outShape) : MemoryDesc.any(outShape, dstType)
        if case .dense = kind, !isLast { dst = MemoryDesc.plain(outShape, dstType) }

        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "attr create")
        defer { dnnl_primitive_attr_destroy(attr) }
        var postOps: dnnl_post_ops_t?
        check(dnnl_post_ops_create(&postOps), "post ops create")
        defer { dnnl_post_ops_destroy(postOps) }
        if relu { check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_relu, 0, 0), "relu post-op") }
        check(dnnl_primitive_attr_set_post_ops(attr, postOps), "set post ops")

        // int8 scales (see the type's comment).
        var srcScale: Float?, dstScale: Float?
        var weightScales = [Float](repeating: 1, count: outChannels)
        var biasValues = bias
        if precision == .int8 {
            let sIn = inputScale ?? 255 / max(inputMax, 1e-6)
            let sOut: Float = dstType == dnnl_u8 ? 255 / max(outputMax, 1e-6) : 1
            let per = weight.count / outChannels
            var outputScales = [Float](repeating: 1, count: outChannels)
            for o in 0..<outChannels {
                var m: Float = 0
                for i in 0..<per { m = max(m, abs(weight[o * per + i])) }
                weightScales[o] = m > 0 ? 127 / m : 1
                outputScales[o] = sOut / (sIn * weightScales[o])
                biasValues[o] = bias[o] * sIn * weightScales[o]
            }
            check(dnnl_primitive_attr_set_output_scales(attr, Int64(outChannels), 1 << 1, &outputScales), "output scales")
            srcScale = sIn
            dstScale = dstType == dnnl_u8 ? sOut : nil
        }

        let primitive: Primitive
        switch kind {
        case .conv(let st, let p):
            let strides = [Int64(st), Int64(st)], pad = [Int64(p), Int64(p)]
            var fd = dnnl_convolution_desc_t()
            check(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_inference, dnnl_convolution_auto, &src, &w, &b, &dst, strides, pad, pad),
                  "inference conv desc")
            primitive = Primitive(&fd, attr: attr, "\(precision) convolution")
        case .dense:
            var fd = dnnl_inner_product_desc_t()
            check(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_inference, &src, &w, &b, &dst), "inference inner product desc")
            primitive = Primitive(&fd, attr: attr, "\(precision) inner product")
        }

        let wDesc = primitive.desc(dnnl_query_weights_md)
        let weights = laidOutWeights[wDesc.key] ?? layOutWeights(wDesc, precision, weightScales)
        laidOutWeights[wDesc.key] = weights  // batch sizes usually share one layout: laid out once
        return Plan(primitive: primitive, weights: weights, bias: Tensor(shape: [outChannels], values: biasValues),
                    srcScale: srcScale, dstScale: dstScale)
    }

    /// The folded weights in a primitive's layout and type; int8: s8, scaled per output channel
    /// by oneDNN's reorder.
    private func layOutWeights(_ desc: MemoryDesc, _ precision: InferencePrecision, _ scales: [Float]) -> Tensor {
        let plain = Tensor(shape: weightShape, values: weight)
        let weights = Tensor(desc: desc, zeroed: false)
        ReorderCache.make(from: plain.desc, to: desc, scales: precision == .int8 ? scales : [])
            .execute([(DNNL_ARG_FROM, plain), (DNNL_ARG_TO, weights)])
        return weights
    }
}
