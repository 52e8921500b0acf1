import CDNNL

/// Fully connected layer (oneDNN inner product): y = x W^T + b.
///
/// forward:  x [N, F] or [N, C, H, W] (F = C*H*W, any layout) -> y [N, out]
/// backward: dy [N, out] -> dx shaped like x; dW [out, F], db [out]
/// A 4-D input is consumed in its blocked layout directly (the weights are reordered to match), so a
/// convolutional trunk needs no flatten-and-reorder before its classifier. W's plain layout is
/// [out, C*H*W] in NCHW order, as PyTorch's `nn.Linear` after `flatten`.
public final class Dense: Layer {
    public let inFeatures, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter
    public var skipInputGradient = false

    private let executor = WeightedExecutor()
    public private(set) var precision = Precision.fp32

    public func use(_ precision: Precision) {
        precondition(precision.trains, "\(precision) is for inference: a trained layer runs fp32 or bf16")
        if precision != self.precision { executor.reset() }
        self.precision = precision
    }

    public init(_ inFeatures: Int, _ outFeatures: Int, rng: inout SplitMix64, name: String = "dense") {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter("\(name).weight", shape: [outFeatures, inFeatures], decays: true,
                           values: Init.pytorchDefault(count: outFeatures * inFeatures, fanIn: inFeatures, rng: &rng))
        bias = Parameter("\(name).bias", shape: [outFeatures], decays: false,
                         values: Init.uniform(count: outFeatures, bound: 1 / Float(inFeatures).squareRoot(), rng: &rng))
    }

    public var parameters: [Parameter] { [weight, bias] }
    public func outputShape(_ s: [Int]) -> [Int] { [s[0], outFeatures] }
    public func multiplyAdds(_ s: [Int]) -> Int { inFeatures * outFeatures }
    public var summary: String { "Dense(\(inFeatures)->\(outFeatures))" }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> WeightedPrimitives {
        let features = x.shape.dropFirst().reduce(1, *)
        precondition(features == inFeatures, "Dense expects \(inFeatures) features per sample, got \(x.shape)")
        let wShape = [outFeatures] + x.shape.dropFirst()
        let type = precision == .bf16 ? dnnl_bf16 : dnnl_f32
        var src = MemoryDesc.any(x.shape, type)
        var w = MemoryDesc.any(wShape, type)
        var b = MemoryDesc.plain([outFeatures])
        var dst = MemoryDesc.plain([x.shape[0], outFeatures])  // f32 out (logits, dropout); bf16 gradients in
        var diffDst = MemoryDesc.plain([x.shape[0], outFeatures], type)
        var dw = MemoryDesc.any(wShape)
        var fd = dnnl_inner_product_desc_t()
        check(dnnl_inner_product_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference,
                                                   &src, &w, &b, &dst), "inner product fwd desc")
        let fwd = Primitive(&fd, "inner product forward")
        var bd: Primitive?, bw: Primitive?
        if mode == .training {
            var d = dnnl_inner_product_desc_t()
            check(dnnl_inner_product_backward_data_desc_init(&d, &src, &w, &diffDst), "inner product bwd data desc")
            if !skipInputGradient { bd = Primitive(&d, hint: fwd, "inner product backward data") }
            var g = dnnl_inner_product_desc_t()
            check(dnnl_inner_product_backward_weights_desc_init(&g, &src, &dw, &b, &diffDst), "inner product bwd weights desc")
            bw = Primitive(&g, hint: fwd, "inner product backward weights")
        }
        // W is stored [out, F]; a 4-D input sees it as [out, C, H, W] (same bytes, NCHW order).
        return WeightedPrimitives(forward: fwd, backwardData: bd, backwardWeights: bw,
                                  weightView: weight.value.reshaped(wShape), gradView: weight.grad.reshaped(wShape))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        executor.forward(x, mode: mode, weight: weight, bias: bias) { makePlan(x, mode) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        executor.backward(dy, weight: weight, bias: bias, layer: "Dense")
    }
}
