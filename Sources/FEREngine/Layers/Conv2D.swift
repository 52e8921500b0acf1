import CDNNL

/// 2-D convolution with bias, on oneDNN's convolution primitives.
///
/// forward:  x [N, Cin, H, W] -> y [N, Cout, OH, OW],  OH = (H + 2p - k) / s + 1
/// backward: dy [N, Cout, OH, OW] -> dx [N, Cin, H, W]; dW [Cout, Cin, k, k], db [Cout]
/// Source, weights and destination use `format_tag_any`, so oneDNN picks its blocked layouts
/// (nChw16c on AVX-512) and activations stay blocked from one layer to the next.
public final class Conv2D: Layer {
    public let inChannels, outChannels, kernel, stride, padding: Int
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

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int = 3, stride: Int = 1, padding: Int? = nil,
                rng: inout SplitMix64, name: String = "conv") {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding ?? kernel / 2
        let fanIn = inChannels * kernel * kernel
        weight = Parameter("\(name).weight", shape: [outChannels, inChannels, kernel, kernel], decays: true,
                           values: Init.pytorchDefault(count: outChannels * fanIn, fanIn: fanIn, rng: &rng))
        bias = Parameter("\(name).bias", shape: [outChannels], decays: false,
                         values: Init.uniform(count: outChannels, bound: 1 / Float(fanIn).squareRoot(), rng: &rng))
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func outputShape(_ s: [Int]) -> [Int] {
        [s[0], outChannels, (s[2] + 2 * padding - kernel) / stride + 1, (s[3] + 2 * padding - kernel) / stride + 1]
    }

    public func multiplyAdds(_ s: [Int]) -> Int {
        let o = outputShape(s)
        return o[1] * o[2] * o[3] * inChannels * kernel * kernel
    }

    public var summary: String { "Conv2D(\(inChannels)->\(outChannels), \(kernel)x\(kernel), stride \(stride), pad \(padding))" }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> WeightedPrimitives {
        precondition(x.shape.count == 4 && x.shape[1] == inChannels, "Conv2D expects [N, \(inChannels), H, W], got \(x.shape)")
        let type = precision == .bf16 ? dnnl_bf16 : dnnl_f32
        var src = MemoryDesc.any(x.shape, type)
        var w = MemoryDesc.any(weight.value.shape, type)
        var b = MemoryDesc.plain([outChannels])
        var dst = MemoryDesc.any(outputShape(x.shape), type)
        var dw = MemoryDesc.any(weight.value.shape)  // weight gradients in f32, for the f32 master weights
        let strides = [Int64(stride), Int64(stride)], pad = [Int64(padding), Int64(padding)]
        var fd = dnnl_convolution_desc_t()
        check(dnnl_convolution_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference,
                                                 dnnl_convolution_auto, &src, &w, &b, &dst, strides, pad, pad), "conv fwd desc")
        let fwd = Primitive(&fd, "conv forward")
        guard mode == .training else {
            return WeightedPrimitives(forward: fwd, backwardData: nil, backwardWeights: nil, weightView: weight.value, gradView: weight.grad)
        }

        var bd = dnnl_convolution_desc_t()
        check(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_auto, &src, &w, &dst, strides, pad, pad), "conv bwd data desc")
        var bw = dnnl_convolution_desc_t()
        check(dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_auto, &src, &dw, &b, &dst, strides, pad, pad),
              "conv bwd weights desc")
        return WeightedPrimitives(forward: fwd,
                                  backwardData: skipInputGradient ? nil : Primitive(&bd, hint: fwd, "conv backward data"),
                                  backwardWeights: Primitive(&bw, hint: fwd, "conv backward weights"),
                                  weightView: weight.value, gradView: weight.grad)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        executor.forward(x, mode: mode, weight: weight, bias: bias) { makePlan(x, mode) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        executor.backward(dy, weight: weight, bias: bias, layer: "Conv2D")
    }
}
