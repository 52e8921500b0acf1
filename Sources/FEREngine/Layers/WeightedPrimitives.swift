import CDNNL

/// The three primitives of a layer with weights and bias (convolution, inner product) and the
/// forward/backward execution they share. The layers only say how to create the primitives.
///
/// forward:  y = op(x, W) + b
/// backward: dW, db from (x, dy) on the backward-weights primitive; dx from (dy, W) on the
///           backward-data primitive (absent for a network's first layer)
struct WeightedPrimitives {
    let forward: Primitive
    let backwardData: Primitive?
    let backwardWeights: Primitive?
    /// The weight parameter seen with the rank the primitives use, and its gradient likewise.
    let weightView: Tensor
    let gradView: Tensor
}

/// Runs `WeightedPrimitives` and keeps what backward needs from the last training forward.
final class WeightedExecutor {
    private var plans = PlanCache<WeightedPrimitives>()
    private var last: (plan: WeightedPrimitives, input: Tensor)?
    private let weights = WeightCache()

    /// Forgets the primitives (the layer's precision changed).
    func reset() {
        plans = PlanCache()
        last = nil
    }

    func forward(_ x: Tensor, mode: Mode, weight: Parameter, bias: Parameter, make: () -> WeightedPrimitives) -> Tensor {
        let p = plans.plan(for: x, mode: mode, make: make)
        let src = x.laidOut(as: p.forward.desc(dnnl_query_src_md))
        let w = weights.tensor(p.weightView, version: weight.version, as: p.forward.desc(dnnl_query_weights_md))
        let y = Tensor(desc: p.forward.desc(dnnl_query_dst_md), zeroed: false)
        p.forward.execute([(DNNL_ARG_SRC, src), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_BIAS, bias.value), (DNNL_ARG_DST, y)])
        if mode == .training { last = (p, src) }
        return y
    }

    func backward(_ dy: Tensor, weight: Parameter, bias: Parameter, layer: String) -> Tensor {
        guard let (p, x) = last, let bw = p.backwardWeights else { fatalError("\(layer).backward before a training forward") }
        let dW = Tensor(desc: bw.desc(dnnl_query_diff_weights_md), zeroed: false)
        bw.execute([(DNNL_ARG_SRC, x.laidOut(as: bw.desc(dnnl_query_src_md))),
                    (DNNL_ARG_DIFF_DST, dy.laidOut(as: bw.desc(dnnl_query_diff_dst_md))),
                    (DNNL_ARG_DIFF_WEIGHTS, dW), (DNNL_ARG_DIFF_BIAS, bias.grad)])
        p.gradView.assign(reordering: dW)
        last = nil
        guard let bd = p.backwardData else { return dy }
        let dx = Tensor(desc: bd.desc(dnnl_query_diff_src_md), zeroed: false)
        let w = weights.tensor(p.weightView, version: weight.version, as: bd.desc(dnnl_query_weights_md))
        bd.execute([(DNNL_ARG_DIFF_DST, dy.laidOut(as: bd.desc(dnnl_query_diff_dst_md))), (DNNL_ARG_WEIGHTS, w), (DNNL_ARG_DIFF_SRC, dx)])
        return dx
    }
}
