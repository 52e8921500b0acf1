import CDNNL

/// Batch normalisation over channels (oneDNN batch normalization), for [N, C, H, W] or [N, C].
///
/// forward (training):  y = scale * (x - mean_B) / sqrt(var_B + eps) + shift, batch statistics;
///                      running statistics updated as PyTorch does (momentum 0.1, unbiased variance)
/// forward (inference): the same with the running statistics
/// backward: dy -> dx, dscale [C], dshift [C]
/// Works in whatever layout the input arrives in, so blocked activations pass through unreordered.
/// With `fusedReLU` the primitive also applies max(y, 0) (oneDNN's fuse_norm_relu), saving a full
/// pass over the activations forward and backward; the presets use it for conv-BN-ReLU.
public final class BatchNorm: Layer {
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let scale: Parameter
    public let shift: Parameter
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public let fusedReLU: Bool
    public var skipInputGradient = false

    private struct Plan { let forward: Primitive; let backward: Primitive? }
    private var plans = PlanCache<Plan>()
    private var plan: Plan?
    private var saved: (x: Tensor, mean: Tensor, variance: Tensor, workspace: Tensor?)?

    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, fusedReLU: Bool = false, name: String = "bn") {
        self.channels = channels
        self.fusedReLU = fusedReLU
        self.epsilon = epsilon
        self.momentum = momentum
        scale = Parameter("\(name).weight", shape: [channels], decays: false, values: .init(repeating: 1, count: channels))
        shift = Parameter("\(name).bias", shape: [channels], decays: false, values: .init(repeating: 0, count: channels))
        runningMean = Parameter("\(name).running_mean", shape: [channels], decays: false, values: .init(repeating: 0, count: channels))
        runningVariance = Parameter("\(name).running_var", shape: [channels], decays: false, values: .init(repeating: 1, count: channels))
    }

    public var parameters: [Parameter] { [scale, shift] }
    public var buffers: [Parameter] { [runningMean, runningVariance] }
    public func outputShape(_ s: [Int]) -> [Int] { s }
    public func multiplyAdds(_ s: [Int]) -> Int { s.dropFirst().reduce(1, *) }
    public var summary: String { "BatchNorm(\(channels))" + (fusedReLU ? "+ReLU" : "") }

    private var flags: UInt32 {
        dnnl_use_scale.rawValue | dnnl_use_shift.rawValue | (fusedReLU ? dnnl_fuse_norm_relu.rawValue : 0)
    }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> Plan {
        precondition(x.shape.count >= 2 && x.shape[1] == channels, "BatchNorm expects \(channels) channels, got \(x.shape)")
        var data = x.desc
        var fd = dnnl_batch_normalization_desc_t()
        if mode == .inference {
            check(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_inference, &data, epsilon,
                                                             flags | dnnl_use_global_stats.rawValue), "bn inference desc")
            return Plan(forward: Primitive(&fd, "batch norm inference"), backward: nil)
        }
        check(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &data, epsilon, flags), "bn fwd desc")
        let fwd = Primitive(&fd, "batch norm forward")
        var bd = dnnl_batch_normalization_desc_t()
        check(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, epsilon, flags), "bn bwd desc")
        return Plan(forward: fwd, backward: Primitive(&bd, hint: fwd, "batch norm backward"))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let p = plans.plan(for: x, mode: mode) { makePlan(x, mode) }
        let y = Tensor(desc: x.desc, zeroed: false)
        if mode == .inference {
            p.forward.execute([(DNNL_ARG_SRC, x), (DNNL_ARG_MEAN, runningMean.value), (DNNL_ARG_VARIANCE, runningVariance.value),
                               (DNNL_ARG_SCALE, scale.value), (DNNL_ARG_SHIFT, shift.value), (DNNL_ARG_DST, y)])
            return y
        }
        let mean = Tensor(desc: p.forward.desc(dnnl_query_dst_md, 1), zeroed: false)
        let variance = Tensor(desc: p.forward.desc(dnnl_query_dst_md, 2), zeroed: false)
        var args = [(DNNL_ARG_SRC, x), (DNNL_ARG_SCALE, scale.value), (DNNL_ARG_SHIFT, shift.value),
                    (DNNL_ARG_DST, y), (DNNL_ARG_MEAN, mean), (DNNL_ARG_VARIANCE, variance)]
        // With the fused ReLU, oneDNN records which outputs were clipped, for the backward pass.
        let workspace = p.forward.hasWorkspace ? Tensor(desc: p.forward.desc(dnnl_query_workspace_md), zeroed: false) : nil
        if let ws = workspace { args.append((DNNL_ARG_WORKSPACE, ws)) }
        p.forward.execute(args)
        updateRunningStatistics(mean: mean, variance: variance, perChannel: x.count / channels)
        plan = p
        saved = (x, mean, variance, workspace)
        return y
    }

    private func updateRunningStatistics(mean: Tensor, variance: Tensor, perChannel n: Int) {
        let m = momentum, unbias = Float(n) / Float(max(n - 1, 1))
        let rm = runningMean.values, rv = runningVariance.values, bm = mean.storage, bv = variance.storage
        for c in 0..<channels {
            rm[c] = (1 - m) * rm[c] + m * bm[c]
            rv[c] = (1 - m) * rv[c] + m * bv[c] * unbias
        }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let p = plan, let bwd = p.backward, let s = saved else { fatalError("BatchNorm.backward before a training forward") }
        let dx = Tensor(desc: s.x.desc, zeroed: false)
        var args = [(DNNL_ARG_SRC, s.x), (DNNL_ARG_MEAN, s.mean), (DNNL_ARG_VARIANCE, s.variance),
                    (DNNL_ARG_DIFF_DST, dy.laidOut(as: s.x.desc)), (DNNL_ARG_SCALE, scale.value), (DNNL_ARG_SHIFT, shift.value),
                    (DNNL_ARG_DIFF_SRC, dx), (DNNL_ARG_DIFF_SCALE, scale.grad), (DNNL_ARG_DIFF_SHIFT, shift.grad)]
        if let ws = s.workspace { args.append((DNNL_ARG_WORKSPACE, ws)) }
        bwd.execute(args)
        saved = nil
        return dx
    }
}
