import CDNNL

/// Rectified linear unit (oneDNN eltwise relu), in the input's own layout.
///
/// forward:  y = max(x, 0)          backward: dx = dy * (x > 0)
public final class ReLU: Layer {
    private struct Plan { let forward: Primitive; let backward: Primitive? }
    private var plans = PlanCache<Plan>()
    private var plan: Plan?
    private var input: Tensor?

    public init() {}

    public func outputShape(_ s: [Int]) -> [Int] { s }
    public var summary: String { "ReLU" }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> Plan {
        var data = x.desc
        var fd = dnnl_eltwise_desc_t()
        check(dnnl_eltwise_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference,
                                             dnnl_eltwise_relu, &data, 0, 0), "relu fwd desc")
        let fwd = Primitive(&fd, "relu forward")
        guard mode == .training else { return Plan(forward: fwd, backward: nil) }
        var bd = dnnl_eltwise_desc_t()
        check(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu, &data, &data, 0, 0), "relu bwd desc")
        return Plan(forward: fwd, backward: Primitive(&bd, hint: fwd, "relu backward"))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let p = plans.plan(for: x, mode: mode) { makePlan(x, mode) }
        let y = Tensor(desc: x.desc, zeroed: false)
        p.forward.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_DST, y)])
        if mode == .training { plan = p; input = x }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let bwd = plan?.backward, let x = input else { fatalError("ReLU.backward before a training forward") }
        let dx = Tensor(desc: x.desc, zeroed: false)
        bwd.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_DIFF_DST, dy.laidOut(as: x.desc)), (DNNL_ARG_DIFF_SRC, dx)])
        input = nil
        return dx
    }
}
