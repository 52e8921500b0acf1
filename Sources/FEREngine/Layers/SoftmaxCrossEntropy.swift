import CDNNL
import Foundation

/// Softmax cross-entropy over class logits, with optional label smoothing, class weights and soft
/// (distribution) targets such as FER+ crowd votes.
///
/// For sample i with target distribution t_i (one-hot, smoothed, or given) and weight
/// w_i = sum_k t_ik * classWeight_k (1 without class weights):
///     loss = sum_i w_i * (-sum_k t_ik * log p_ik) / sum_i w_i,     p_i = softmax(z_i)
///     dloss/dz_i = w_i * (p_i - t_i) / sum_i w_i
/// With one-hot targets and class weights this is PyTorch's `cross_entropy(weight=...)`.
/// With logit offsets b (logit adjustment, Menon et al. 2021: b_k = tau * log prior_k), p_i is
/// softmax(z_i + b): the loss asks rare classes for a larger margin, and inference (which adds
/// nothing) is then fair to them. log p comes from oneDNN's logsoftmax primitive.
public struct SoftmaxCrossEntropy {
    public var labelSmoothing: Float
    public var classWeights: [Float]?
    /// Added to every sample's logits before the softmax, in training only (nil: none).
    public var logitOffsets: [Float]?

    public init(labelSmoothing: Float = 0, classWeights: [Float]? = nil, logitOffsets: [Float]? = nil) {
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
        self.logitOffsets = logitOffsets
    }

    /// Logit adjustment's offsets, tau * log prior_k, for a class prior (any positive scale);
    /// a class with no share gets the offset of the smallest share present.
    public static func logitAdjustment(prior: [Float], tau: Float) -> [Float] {
        let total = prior.reduce(0, +)
        let shares = prior.map { total > 0 ? $0 / total : 0 }
        let floor = shares.filter { $0 > 0 }.min() ?? 1
        return shares.map { tau * log(max($0, floor)) }
    }

    public enum Target {
        /// Class index per sample.
        case labels([Int])
        /// A probability distribution per sample, row-major [N, K].
        case distributions([Float])
    }

    public struct Result {
        public let loss: Float
        /// dloss/dlogits, [N, K], plain.
        public let gradient: Tensor
        /// softmax(logits + offsets), row-major [N, K].
        public let probabilities: [Float]
    }

    /// Per-sample target distributions after label smoothing.
    func targetDistributions(_ target: Target, n: Int, k: Int) -> [Float] {
        var t: [Float]
        switch target {
        case .labels(let ys):
            precondition(ys.count == n, "\(ys.count) labels for \(n) samples")
            t = .init(repeating: 0, count: n * k)
            for (i, y) in ys.enumerated() {
                precondition(y >= 0 && y < k, "label \(y) outside 0..<\(k)")
                t[i * k + y] = 1
            }
        case .distributions(let d):
            precondition(d.count == n * k, "\(d.count) target values for [\(n), \(k)]")
            t = d
        }
        if labelSmoothing > 0 {
            let e = labelSmoothing
            for i in 0..<t.count { t[i] = (1 - e) * t[i] + e / Float(k) }
        }
        return t
    }

    public func callAsFunction(_ logits: Tensor, _ target: Target) -> Result {
        let shape = logits.shape
        precondition(shape.count == 2, "logits must be [N, K], got \(shape)")
        let n = shape[0], k = shape[1]
        var z = logits.laidOut(as: .plain(shape))
        if let b = logitOffsets {
            precondition(b.count == k, "\(b.count) logit offsets for \(k) classes")
            let shifted = Tensor(zeros: shape), src = z.storage, dst = shifted.storage
            for i in 0..<n { for j in 0..<k { dst[i * k + j] = src[i * k + j] + b[j] } }
            z = shifted
        }
        let logp = LogSoftmax.shared.apply(z)
        let lp = UnsafeBufferPointer(logp.storage)
        let t = targetDistributions(target, n: n, k: k)
        var w = [Float](repeating: 1, count: n)
        if let cw = classWeights {
            precondition(cw.count == k, "\(cw.count) class weights for \(k) classes")
            for i in 0..<n { w[i] = (0..<k).reduce(0) { $0 + t[i * k + $1] * cw[$1] } }
        }
        let wsum = max(w.reduce(0, +), 1e-12)
        var loss: Double = 0
        var probs = [Float](repeating: 0, count: n * k)
        let grad = Tensor(zeros: shape)
        let g = grad.storage
        for i in 0..<n {
            var ce: Double = 0
            for j in 0..<k {
                let idx = i * k + j
                ce -= Double(t[idx] * lp[idx])
                probs[idx] = exp(lp[idx])
                g[idx] = w[i] * (probs[idx] - t[idx]) / wsum
            }
            loss += Double(w[i]) * ce
        }
        return Result(loss: Float(loss / Double(wsum)), gradient: grad, probabilities: probs)
    }
}

/// log(softmax(z)) along the class axis, on oneDNN's logsoftmax primitive. Also gives inference
/// probabilities.
public final class LogSoftmax: @unchecked Sendable {  // its plans behind `lock`
    public static let shared = LogSoftmax()
    private var plans: [Data: Primitive] = [:]
    private let lock = NSLock()

    public func apply(_ z: Tensor) -> Tensor {
        lock.lock(); defer { lock.unlock() }
        let key = z.desc.key
        let p = plans[key] ?? {
            var d = z.desc
            var desc = dnnl_logsoftmax_desc_t()
            check(dnnl_logsoftmax_forward_desc_init(&desc, dnnl_forward_inference, &d, 1), "logsoftmax desc")
            let p = Primitive(&desc, "logsoftmax")
            plans[key] = p
            return p
        }()
        let y = Tensor(desc: z.desc, zeroed: false)
        p.execute([(DNNL_ARG_SRC, z), (DNNL_ARG_DST, y)])
        return y
    }

    /// Row-wise softmax probabilities of plain [N, K] logits.
    public func probabilities(_ logits: Tensor) -> [Float] {
        apply(logits.laidOut(as: .plain(logits.shape))).plainValues().map { exp($0) }
    }
}
