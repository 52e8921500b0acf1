import CDNNL

/// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by
/// 1/(1-p); in inference it is the identity. oneDNN 2.6 has no dropout primitive, so this is a plain
/// elementwise loop over the physical buffer (layout-agnostic: padding stays zero).
///
/// forward:  y = x * mask / (1 - p)        backward: dx = dy * mask / (1 - p)
public final class Dropout: Layer {
    public let probability: Float
    private var rng: SplitMix64
    private var mask: [Float] = []
    private var inputDesc: MemoryDesc?

    public init(_ probability: Float, seed: UInt64 = 0x5EED) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
        self.rng = SplitMix64(seed: seed)
    }

    /// Restarts the mask sequence (for reproducible runs and resumes).
    public func reseed(_ seed: UInt64) { rng = SplitMix64(seed: seed) }

    public func outputShape(_ s: [Int]) -> [Int] { s }
    public var summary: String { "Dropout(\(probability))" }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        guard mode == .training, probability > 0 else { return x }
        let x = x.laidOut(as: x.desc.with(dnnl_f32))  // the mask loop reads f32 (a bf16 input is widened)
        let keep = 1 - probability, scale = 1 / keep
        let n = x.storageCount
        if mask.count != n { mask = .init(repeating: 0, count: n) }
        for i in 0..<n { mask[i] = rng.unit() < keep ? scale : 0 }
        let y = Tensor(desc: x.desc, zeroed: false)
        let xs = x.storage, ys = y.storage
        mask.withUnsafeBufferPointer { m in for i in 0..<n { ys[i] = xs[i] * m[i] } }
        inputDesc = x.desc
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard probability > 0 else { return dy }
        guard let d = inputDesc else { fatalError("Dropout.backward before a training forward") }
        let g = dy.laidOut(as: d)
        let dx = Tensor(desc: d, zeroed: false)
        let gs = g.storage, xs = dx.storage
        mask.withUnsafeBufferPointer { m in for i in 0..<gs.count { xs[i] = gs[i] * m[i] } }
        return dx
    }
}
