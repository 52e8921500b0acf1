import CDNNL

/// Parametric ReLU with one learned slope per channel (oneDNN prelu), as in MTCNN's networks.
///
/// forward:  y = x if x > 0 else a_c * x        x [N, C, H, W] or [N, C]
/// backward: dx = dy if x > 0 else a_c * dy;  da_c = sum over x <= 0 of dy * x
public final class PReLU: Layer {
    public let channels: Int
    public let weight: Parameter

    private struct Plan { let forward: Primitive; let backward: Primitive?; let slopes: Tensor; let slopeGrads: Tensor }
    private var plans = PlanCache<Plan>()
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
        let wShape = [1, channels] + Array(repeating: 1, count: x.shape.count - 2)
        let slopes = weight.value.reshaped(wShape), slopeGrads = weight.grad.reshaped(wShape)
        var data = x.desc, w = slopes.desc
        var fd = dnnl_prelu_desc_t()
        check(dnnl_prelu_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference, &data, &w), "prelu fwd desc")
        let fwd = Primitive(&fd, "prelu forward")
        var bwd: Primitive?
        if mode == .training {
            var bd = dnnl_prelu_desc_t()
            check(dnnl_prelu_backward_desc_init(&bd, &data, &w, &data, &w), "prelu bwd desc")
            bwd = Primitive(&bd, hint: fwd, "prelu backward")
        }
        return Plan(forward: fwd, backward: bwd, slopes: slopes, slopeGrads: slopeGrads)
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let p = plans.plan(for: x, mode: mode) { makePlan(x, mode) }
        let y = Tensor(desc: x.desc, zeroed: false)
        p.forward.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_WEIGHTS, p.slopes), (DNNL_ARG_DST, y)])
        if mode == .training { last = (p, x) }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let (p, x) = last, let bwd = p.backward else { fatalError("PReLU.backward before a training forward") }
        let dx = Tensor(desc: x.desc, zeroed: false)
        bwd.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_WEIGHTS, p.slopes), (DNNL_ARG_DIFF_DST, dy.laidOut(as: x.desc)),
                     (DNNL_ARG_DIFF_SRC, dx), (DNNL_ARG_DIFF_WEIGHTS, p.slopeGrads)])
        last = nil
        return dx
    }
}
