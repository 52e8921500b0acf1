import CDNNL

/// Max and average pooling (oneDNN pooling), in the input's own layout.
///
/// forward:  x [N, C, H, W] -> y [N, C, OH, OW],  OH = (H + 2p - k) / s + 1
/// backward: dy -> dx [N, C, H, W] (max pooling routes through the workspace oneDNN keeps)
public final class Pool2D: Layer {
    public enum Kind: String, Sendable { case max, average }
    public let kind: Kind
    public let kernel, stride, padding: Int
    /// Kernel covers the whole feature map (global average pooling).
    public let global: Bool
    /// Round the output size up, as PyTorch's ceil_mode (the last window may hang over the edge).
    public let ceilMode: Bool

    private struct Plan { let forward: Primitive; let backward: Primitive? }
    private var plans = PlanCache<Plan>()
    private var plan: Plan?
    private var saved: (x: Tensor, workspace: Tensor?)?

    public init(_ kind: Kind, kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false) {
        self.kind = kind
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        self.global = false
        self.ceilMode = ceilMode
    }

    private init(globalAverage: ()) {
        kind = .average; kernel = 0; stride = 1; padding = 0; global = true; ceilMode = false
    }

    public static func maxPool(_ k: Int = 2, stride: Int? = nil, ceilMode: Bool = false) -> Pool2D {
        Pool2D(.max, kernel: k, stride: stride, ceilMode: ceilMode)
    }
    public static func averagePool(_ k: Int = 2, stride: Int? = nil) -> Pool2D { Pool2D(.average, kernel: k, stride: stride) }
    /// Averages each channel over the whole map: [N, C, H, W] -> [N, C, 1, 1].
    public static func globalAverage() -> Pool2D { Pool2D(globalAverage: ()) }

    private func window(_ s: [Int]) -> (kh: Int, kw: Int, st: Int, pad: Int) {
        global ? (s[2], s[3], 1, 0) : (kernel, kernel, stride, padding)
    }

    private func outputSide(_ n: Int, _ k: Int, _ st: Int, _ pad: Int) -> Int {
        let span = n + 2 * pad - k
        var out = (ceilMode ? (span + st - 1) / st : span / st) + 1
        // As PyTorch: the last window must start inside the input or left padding.
        if ceilMode, (out - 1) * st >= n + pad { out -= 1 }
        return out
    }

    public func outputShape(_ s: [Int]) -> [Int] {
        let w = window(s)
        return [s[0], s[1], outputSide(s[2], w.kh, w.st, w.pad), outputSide(s[3], w.kw, w.st, w.pad)]
    }

    public func multiplyAdds(_ s: [Int]) -> Int { s.dropFirst().reduce(1, *) }
    public var summary: String { global ? "GlobalAvgPool" : "\(kind == .max ? "MaxPool" : "AvgPool")(\(kernel), stride \(stride))" }

    private func makePlan(_ x: Tensor, _ mode: Mode) -> Plan {
        precondition(x.shape.count == 4, "pooling expects [N, C, H, W], got \(x.shape)")
        let w = window(x.shape)
        var src = x.desc
        var dst = MemoryDesc.any(outputShape(x.shape), x.desc.dataType)  // pooling keeps the element type (f32, bf16, u8)
        let strides = [Int64(w.st), Int64(w.st)], k = [Int64(w.kh), Int64(w.kw)]
        let dil: [Int64] = [0, 0], pad = [Int64(w.pad), Int64(w.pad)]
        // Right/bottom padding that makes the output size come out as outputShape says (ceil mode).
        let o = outputShape(x.shape)
        let padR = [Int64((o[2] - 1) * w.st + w.kh - x.shape[2] - w.pad), Int64((o[3] - 1) * w.st + w.kw - x.shape[3] - w.pad)]
        let alg = kind == .max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding
        var fd = dnnl_pooling_v2_desc_t()
        check(dnnl_pooling_v2_forward_desc_init(&fd, mode == .training ? dnnl_forward_training : dnnl_forward_inference,
                                                alg, &src, &dst, strides, k, dil, pad, padR), "pool fwd desc")
        let fwd = Primitive(&fd, "pooling forward")
        guard mode == .training else { return Plan(forward: fwd, backward: nil) }
        var bd = dnnl_pooling_v2_desc_t()
        check(dnnl_pooling_v2_backward_desc_init(&bd, alg, &src, &dst, strides, k, dil, pad, padR), "pool bwd desc")
        return Plan(forward: fwd, backward: Primitive(&bd, hint: fwd, "pooling backward"))
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let p = plans.plan(for: x, mode: mode) { makePlan(x, mode) }
        let y = Tensor(desc: p.forward.desc(dnnl_query_dst_md), zeroed: false)
        var args = [(DNNL_ARG_SRC, x), (DNNL_ARG_DST, y)]
        var workspace: Tensor?
        if mode == .training, p.forward.hasWorkspace {
            workspace = Tensor(desc: p.forward.desc(dnnl_query_workspace_md), zeroed: false)
            args.append((DNNL_ARG_WORKSPACE, workspace!))
        }
        p.forward.execute(args)
        if mode == .training { plan = p; saved = (x, workspace) }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let bwd = plan?.backward, let s = saved else { fatalError("Pool2D.backward before a training forward") }
        let dx = Tensor(desc: bwd.desc(dnnl_query_diff_src_md), zeroed: false)
        var args = [(DNNL_ARG_DIFF_DST, dy.laidOut(as: bwd.desc(dnnl_query_diff_dst_md))), (DNNL_ARG_DIFF_SRC, dx)]
        if let ws = s.workspace { args.append((DNNL_ARG_WORKSPACE, ws)) }
        bwd.execute(args)
        saved = nil
        return dx
    }
}
