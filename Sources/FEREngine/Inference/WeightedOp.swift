import CDNNL
import Foundation

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
    /// Whether the input can be negative: int8 then quantizes an f32 input to s8 rather than u8.
    var inputSigned = false
    /// int8 calibration: the largest input |value| (used when the input arrives as f32: the
    /// network's input; a u8 or s8 input brings the scales its producer wrote it with), and the
    /// largest output |value|, one per output channel or one for all.
    var inputMax: Float = 0, outputMax: [Float] = [0]

    private struct Plan {
        let primitive: Primitive
        let weights: Tensor
        let bias: Tensor
        let srcScale: Float?
        let dstScales: [Float]?
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

    /// `scales`: the quantization scales of a u8 or s8 `x` (one per channel, or one for all); the
    /// result carries the scales of the output.
    func forward(_ x: Tensor, scales: [Float]?, precision: Precision) -> (Tensor, [Float]?) {
        var key = x.desc.key
        key.append(contentsOf: precision.rawValue.utf8)
        if plans[key] == nil, plans.count >= 64 { plans.removeAll() }  // endless batch sizes stay bounded
        let plan = plans[key] ?? makePlan(x, inputScales: Self.isQuantized(x) ? scales : nil, precision)
        plans[key] = plan
        // An f32 input is quantized on its way in; a u8 or s8 one already is.
        let src = x.laidOut(as: plan.primitive.desc(dnnl_query_src_md), scale: Self.isQuantized(x) ? 1 : plan.srcScale ?? 1)
        let y = Tensor(desc: plan.primitive.desc(dnnl_query_dst_md), zeroed: false)
        plan.primitive.execute([(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, plan.weights), (DNNL_ARG_BIAS, plan.bias), (DNNL_ARG_DST, y)])
        return (y, plan.dstScales)
    }

    static func isQuantized(_ x: Tensor) -> Bool { x.desc.dataType == dnnl_u8 || x.desc.dataType == dnnl_s8 }

    /// `inputScales`: the scales a u8 or s8 input was written with (nil for an f32 input, which is
    /// then quantized with its calibrated range).
    private func makePlan(_ x: Tensor, inputScales: [Float]?, _ precision: Precision) -> Plan {
        let outShape = outputShape(x.shape)
        // Element types: the last layer always writes f32 logits; int8 hidden layers write u8 after
        // a ReLU (non-negative outputs) and s8 otherwise.
        let (srcType, weiType, dstType): (dnnl_data_type_t, dnnl_data_type_t, dnnl_data_type_t)
        switch precision {
        case .fp32: (srcType, weiType, dstType) = (dnnl_f32, dnnl_f32, dnnl_f32)
        case .bf16: (srcType, weiType, dstType) = (dnnl_bf16, dnnl_bf16, isLast ? dnnl_f32 : dnnl_bf16)
        case .int8:
            let src = Self.isQuantized(x) ? x.desc.dataType : inputSigned ? dnnl_s8 : dnnl_u8
            (srcType, weiType, dstType) = (src, dnnl_s8, isLast ? dnnl_f32 : relu ? dnnl_u8 : dnnl_s8)
        }
        var src = MemoryDesc.any(x.shape, srcType)
        var w = MemoryDesc.any(weightShape, weiType)
        var b = MemoryDesc.plain([outChannels])
        // A convolution picks its output layout (a plain nchw one sends int8 to the reference
        // kernel); a dense layer's output is plain [N, C] anyway.
        var dst = MemoryDesc.any(outShape, dstType)
        if case .dense = kind { dst = MemoryDesc.plain(outShape, dstType) }

        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "attr create")
        defer { dnnl_primitive_attr_destroy(attr) }
        var postOps: dnnl_post_ops_t?
        check(dnnl_post_ops_create(&postOps), "post ops create")
        defer { dnnl_post_ops_destroy(postOps) }
        if relu { check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_relu, 0, 0), "relu post-op") }
        check(dnnl_primitive_attr_set_post_ops(attr, postOps), "set post ops")

        // int8 scales (see InferenceNetwork's comment). An input channel c quantized with its own
        // scale sIn_c is undone in the weights: w'[o, c] = w[o, c] / sIn_c, then s8 per output channel.
        var srcScale: Float?, dstScales: [Float]?
        var weightScales = [Float](repeating: 1, count: outChannels)
        var biasValues = bias
        var quantizable = weight
        var sIn: [Float] = []
        if precision == .int8 {
            sIn = inputScales ?? [(srcType == dnnl_s8 ? 127 : 255) / max(inputMax, 1e-6)]
            let sOut: [Float] = isLast ? [1] : outputMax.map { (dstType == dnnl_u8 ? 255 : 127) / $0 }
            let per = weight.count / outChannels, spatial = per / sIn.count  // weights [out, C, ...]
            var outputScales = [Float](repeating: 1, count: outChannels)
            for o in 0..<outChannels {
                var m: Float = 0
                for i in 0..<per {
                    quantizable[o * per + i] = weight[o * per + i] / sIn[i / spatial]
                    m = max(m, abs(quantizable[o * per + i]))
                }
                // acc_o = sum_c x_q[c] * w'_q[o, c] = weightScales[o] * (W x)_o
                weightScales[o] = m > 0 ? Self.weightLevels / m : 1
                outputScales[o] = sOut[sOut.count == 1 ? 0 : o] / weightScales[o]
                biasValues[o] = bias[o] * weightScales[o]
            }
            check(dnnl_primitive_attr_set_output_scales(attr, Int64(outChannels), 1 << 1, &outputScales), "output scales")
            srcScale = sIn.count == 1 ? sIn[0] : nil
            dstScales = isLast ? nil : sOut
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

        // Batch sizes usually share one layout (and the input scales never change): laid out once.
        let wDesc = primitive.desc(dnnl_query_weights_md)
        var wKey = wDesc.key
        sIn.withUnsafeBytes { wKey.append(contentsOf: $0) }
        let weights = laidOutWeights[wKey] ?? layOutWeights(quantizable, wDesc, precision, weightScales)
        laidOutWeights[wKey] = weights
        return Plan(primitive: primitive, weights: weights, bias: Tensor(shape: [outChannels], values: biasValues),
                    srcScale: srcScale, dstScales: dstScales)
    }

    /// The largest s8 weight. Without VNNI, oneDNN's int8 kernels add pairs of u8 x s8 products in
    /// 16 bits (vpmaddubsw), which saturate with full-range weights (2 x 255 x 127 > 32767): there,
    /// weights use 7 bits, as oneDNN advises, and the sums stay exact.
    static var weightLevels: Float { CPUFeatures.vnni ? 127 : 63 }

    /// Weights (plain) in a primitive's layout and type; int8: s8, scaled per output channel by
    /// oneDNN's reorder.
    private func layOutWeights(_ values: [Float], _ desc: MemoryDesc, _ precision: Precision, _ scales: [Float]) -> Tensor {
        let plain = Tensor(shape: weightShape, values: values)
        let weights = Tensor(desc: desc, zeroed: false)
        ReorderCache.make(from: plain.desc, to: desc, scales: precision == .int8 ? scales : [])
            .execute([(DNNL_ARG_FROM, plain), (DNNL_ARG_TO, weights)])
        return weights
    }
}
