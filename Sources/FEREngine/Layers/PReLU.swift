import CDNNL

/// Parametric ReLU with one learned slope per channel (oneDNN prelu), as in MTCNN's networks.
///
/// forward:  y = x if x > 0 else a_c * x        x [N, C, H, W] or [N, C]
/// backward: dx = dy if x > 0 else a_c * dy;  da_c = sum over x <= 0 of dy * x
public final class PReLU: Layer {
    public let channels: Int
    public let weight: Parameter

    /// `input`: the layout the primitives read and write (the input's own, unless this CPU's JIT
    /// kernels do not take it); `slopes`, `slopeGrads`: the layouts they chose for a_c and da_c;
    /// `plainSlopes`, `plainGrads`: the parameter's value and gradient seen in the slopes' shape.
    private struct Plan {
        let forward: Primitive, backward: Primitive?
        let input: MemoryDesc, slopes: MemoryDesc, slopeGrads: MemoryDesc?
        let plainSlopes: Tensor, plainGrads: Tensor
    }
    private var plans = PlanCache<Plan>()
    private let slopeLayouts = WeightCache()
    private var last: (plan: Plan, input: Tensor)?

    public init(_ channels: Int, initial: Float = 0.25, name: String = "prelu") {
        self.channels = channels
        weight = Parameter("\(name).weight", shape: [channels], decays: false, values: .init(repeating: initial, count: channels))
    }

    public var parameters: [Parameter] { [weight] }
    public func outputShape(_ s: [Int]) -> [Int] { s }
    public var summary: String { "PReLU(\(channels))" }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> Plan {
        precondition(x.shape.count >= 2 && x.shape[1] == channels, "PReLU expects \(channels) channels, got \(x.shape)")
        // The C slopes seen as [1, C, 1, 1] (or [1, C]): broadcast over batch and space.
        let slopeShape = [1, channels] + Array(repeating: 1, count: x.shape.count - 2)
        // The slopes' layout is left to oneDNN (`any`): its JIT kernels want them blocked like the
        // data (8 or 16 channels), and given plain slopes with blocked data it runs its reference
        // loop, ~100x slower (MTCNN's detection on AVX2: 175 of 225 ms).
        func forward(_ data: MemoryDesc) -> Primitive {
            var data = data, w = MemoryDesc.any(slopeShape)
            var fd = dnnl_prelu_desc_t()
            check(dnnl_prelu_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference, &data, &w), "prelu fwd desc")
            return Primitive(&fd, "prelu forward")
        }
        var input = x.desc, fwd = forward(input)
        if fwd.isReference {
            // A blocking this CPU's kernels do not take (16 channels on AVX2): the plain layout,
            // which they all take, for one reorder each way.
            input = .plain(x.shape, x.desc.dataType)
            fwd = forward(input)
        }
        var bwd: Primitive?
        if mode == .training {
            var data = input, w = fwd.desc(dnnl_query_weights_md), dw = MemoryDesc.any(slopeShape)
            var bd = dnnl_prelu_desc_t()
            check(dnnl_prelu_backward_desc_init(&bd, &data, &w, &data, &dw), "prelu bwd desc")
            bwd = Primitive(&bd, hint: fwd, "prelu backward")
        }
        return Plan(forward: fwd, backward: bwd, input: input, slopes: fwd.desc(dnnl_query_weights_md),
                    slopeGrads: bwd?.desc(dnnl_query_diff_weights_md),
                    plainSlopes: weight.value.reshaped(slopeShape), plainGrads: weight.grad.reshaped(slopeShape))
    }

    private func slopes(_ p: Plan) -> Tensor { slopeLayouts.tensor(p.plainSlopes, version: weight.version, as: p.slopes) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let p = plans.plan(for: x, mode: mode) { makePlan(x, mode) }
        let input = x.laidOut(as: p.input)
        let y = Tensor(desc: p.input, zeroed: false)
        p.forward.execute([(DNNL_ARG_SRC, input), (DNNL_ARG_WEIGHTS, slopes(p)), (DNNL_ARG_DST, y)])
        if mode == .training { last = (p, input) }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let (p, x) = last, let bwd = p.backward, let gradLayout = p.slopeGrads else { fatalError("PReLU.backward before a training forward") }
        let dx = Tensor(desc: x.desc, zeroed: false)
        let grads = gradLayout.sameLayout(as: p.plainGrads.desc) ? p.plainGrads : Tensor(desc: gradLayout, zeroed: false)
        bwd.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_WEIGHTS, slopes(p)), (DNNL_ARG_DIFF_DST, dy.laidOut(as: x.desc)),
                     (DNNL_ARG_DIFF_SRC, dx), (DNNL_ARG_DIFF_WEIGHTS, grads)])
        if grads !== p.plainGrads { p.plainGrads.assign(reordering: grads) }
        last = nil
        return dx
    }
}
