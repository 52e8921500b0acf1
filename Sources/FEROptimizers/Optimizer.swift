import Foundation
import FEREngine

/// Updates parameters from their gradients. Updates are elementwise over plain buffers; oneDNN has no
/// optimizer primitives, and these loops vectorise and run in slices over the cores.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// One update of every parameter from its current gradient.
    func step()
    /// Moment buffers etc., saved with checkpoints so a resumed run continues exactly.
    var state: [String: [Float]] { get }
    func load(state: [String: [Float]]) throws
    var stepCount: Int { get }
}

public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, adam, adamw
}

public struct OptimizerConfig: Codable, Sendable, Equatable {
    public var kind: OptimizerKind = .adamw
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var nesterov: Bool = false
    public var weightDecay: Float = 0
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public init() {}

    public func make(_ parameters: [Parameter]) -> Optimizer {
        switch kind {
        case .sgd: return SGD(parameters, config: self)
        case .adam, .adamw: return Adam(parameters, config: self, decoupled: kind == .adamw)
        }
    }
}

/// SGD with momentum (PyTorch's convention: v = mu v + g; p -= lr v), optional Nesterov
/// (p -= lr (g + mu v)) and L2 weight decay added to the gradient.
public final class SGD: Optimizer {
    public var learningRate: Float
    let parameters: [Parameter]
    let momentum, weightDecay: Float
    let nesterov: Bool
    let velocity: Moments
    let slices: [Slice]
    public private(set) var stepCount = 0

    init(_ parameters: [Parameter], config: OptimizerConfig) {
        self.parameters = parameters
        learningRate = config.learningRate
        momentum = config.momentum
        weightDecay = config.weightDecay
        nesterov = config.nesterov
        velocity = Moments(parameters)
        slices = Slice.covering(parameters, velocity)
    }

    public func step() {
        stepCount += 1
        let lr = learningRate, mu = momentum, nesterov = nesterov, decay = weightDecay
        Slice.update(slices) { s in
            let wd = Lanes(repeating: s.decays ? decay : 0), mu = Lanes(repeating: mu), lr = Lanes(repeating: lr)
            s.forEachGroup { i, n in
                let w = Lanes(s.weights, i, n), grad = Lanes(s.grads, i, n) + wd * w
                let v = mu * Lanes(s.first, i, n) + grad
                v.store(s.first, i, n)
                (w - lr * (nesterov ? grad + mu * v : v)).store(s.weights, i, n)
            }
        }
        for p in parameters { p.changed() }
    }

    public var state: [String: [Float]] {
        var s: [String: [Float]] = ["step": [Float(stepCount)]]
        for (i, p) in parameters.enumerated() { s["velocity." + p.name] = Array(velocity[i]) }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        stepCount = Int(state["step"]?.first ?? 0)
        for (i, p) in parameters.enumerated() {
            guard let v = state["velocity." + p.name], v.count == p.count else { throw OptimizerError.missingState(p.name) }
            _ = velocity[i].update(fromContentsOf: v)
        }
    }
}

/// Adam (L2 decay folded into the gradient) and AdamW (decoupled decay: p -= lr * wd * p), with
/// bias-corrected moments, as in PyTorch.
public final class Adam: Optimizer {
    public var learningRate: Float
    let parameters: [Parameter]
    let beta1, beta2, epsilon, weightDecay: Float
    let decoupled: Bool
    let m: Moments, v: Moments
    let slices: [Slice]
    public private(set) var stepCount = 0

    init(_ parameters: [Parameter], config: OptimizerConfig, decoupled: Bool) {
        self.parameters = parameters
        learningRate = config.learningRate
        beta1 = config.beta1
        beta2 = config.beta2
        epsilon = config.epsilon
        weightDecay = config.weightDecay
        self.decoupled = decoupled
        m = Moments(parameters)
        v = Moments(parameters)
        slices = Slice.covering(parameters, m, v)
    }

    public func step() {
        stepCount += 1
        let b1 = beta1, b2 = beta2, eps = epsilon, lr = learningRate
        let c1 = 1 - pow(b1, Float(stepCount)), c2 = 1 - pow(b2, Float(stepCount))
        let stepSize = lr / c1, c2root = c2.squareRoot()
        let decay = weightDecay, decoupled = decoupled
        Slice.update(slices) { s in
            let wd: Float = s.decays ? decay : 0
            let l2 = Lanes(repeating: decoupled ? 0 : wd), shrink = Lanes(repeating: decoupled ? 1 - lr * wd : 1)
            let b1 = Lanes(repeating: b1), b2 = Lanes(repeating: b2), eps = Lanes(repeating: eps)
            let stepSize = Lanes(repeating: stepSize), c2root = Lanes(repeating: c2root), one = Lanes(repeating: 1)
            s.forEachGroup { i, n in
                let w = Lanes(s.weights, i, n), grad = Lanes(s.grads, i, n) + l2 * w
                let m = b1 * Lanes(s.first, i, n) + (one - b1) * grad
                let v = b2 * Lanes(s.second!, i, n) + (one - b2) * grad * grad
                m.store(s.first, i, n)
                v.store(s.second!, i, n)
                (w * shrink - stepSize * m / (v.squareRoot() / c2root + eps)).store(s.weights, i, n)
            }
        }
        for p in parameters { p.changed() }
    }

    public var state: [String: [Float]] {
        var s: [String: [Float]] = ["step": [Float(stepCount)]]
        for (i, p) in parameters.enumerated() {
            s["m." + p.name] = Array(m[i])
            s["v." + p.name] = Array(v[i])
        }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        stepCount = Int(state["step"]?.first ?? 0)
        for (i, p) in parameters.enumerated() {
            guard let mi = state["m." + p.name], let vi = state["v." + p.name], mi.count == p.count, vi.count == p.count
            else { throw OptimizerError.missingState(p.name) }
            _ = m[i].update(fromContentsOf: mi)
            _ = v[i].update(fromContentsOf: vi)
        }
    }
}

/// One buffer per parameter (momentum, second moment), zeroed, owned by the optimizer. Buffers
/// rather than [[Float]] so that the slices of one update can write them from several threads.
final class Moments {
    private let buffers: [UnsafeMutableBufferPointer<Float>]

    init(_ parameters: [Parameter]) {
        buffers = parameters.map {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.count)
            b.initialize(repeating: 0)
            return b
        }
    }

    deinit { buffers.forEach { $0.deallocate() } }

    subscript(i: Int) -> UnsafeMutableBufferPointer<Float> { buffers[i] }
}

/// One slice of one parameter's update: `count` elements of its weights, gradients and moment
/// buffers, from the same offset.
struct Slice: @unchecked Sendable {  // safe: the slices of one update cover disjoint elements
    let weights, grads, first: UnsafeMutablePointer<Float>
    let second: UnsafeMutablePointer<Float>?
    let count: Int
    let decays: Bool

    /// Calls `body(offset, lanes)` for each group of up to 16 elements.
    @inline(__always) func forEachGroup(_ body: (Int, Int) -> Void) {
        for i in stride(from: 0, to: count, by: Lanes.scalarCount) { body(i, min(Lanes.scalarCount, count - i)) }
    }

    /// Every element of every parameter, in slices of at most 32,768, with the same elements of the
    /// moment buffers. Made once per optimiser: parameters and moments never move.
    static func covering(_ parameters: [Parameter], _ first: Moments, _ second: Moments? = nil) -> [Slice] {
        let size = 1 << 15
        return parameters.enumerated().flatMap { pi, p in
            stride(from: 0, to: p.count, by: size).map { start in
                Slice(weights: p.values.baseAddress! + start, grads: p.grads.baseAddress! + start,
                      first: first[pi].baseAddress! + start, second: second.map { $0[pi].baseAddress! + start },
                      count: min(size, p.count - start), decays: p.decays)
            }
        }
    }

    /// Runs `update` on every slice, spread over the cores. An optimiser's update is elementwise, so
    /// the split changes no result, and the cores oneDNN used for the step would otherwise wait while
    /// one of them walks ~5 M weights.
    static func update(_ slices: [Slice], _ update: @Sendable (Slice) -> Void) {
        DispatchQueue.concurrentPerform(iterations: slices.count) { update(slices[$0]) }
    }
}

/// The updates work on 16 elements at a time, written once for all of them, so that they compile to
/// vector instructions (the scalar loop did not vectorise; Adam's square root still runs lane by
/// lane). Each lane computes exactly what a scalar loop would: the same bits.
typealias Lanes = SIMD16<Float>

extension SIMD16<Float> {
    /// `n` elements from `p + i`; lanes past `n` are zero.
    @inline(__always) init(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) {
        if n == Self.scalarCount {
            self = UnsafeRawPointer(p + i).loadUnaligned(as: Self.self)
        } else {
            self.init()
            for k in 0..<n { self[k] = p[i + k] }
        }
    }

    /// Writes the first `n` lanes to `p + i`.
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) {
        if n == Self.scalarCount {
            UnsafeMutableRawPointer(p + i).storeBytes(of: self, as: Self.self)
        } else {
            for k in 0..<n { p[i + k] = self[k] }
        }
    }
}

public enum OptimizerError: Error, CustomStringConvertible {
    case missingState(String)
    public var description: String {
        switch self {
        case .missingState(let n): return "optimizer state for parameter '\(n)' is missing or has the wrong size"
        }
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`; returns the norm before.
@discardableResult
public func clipGradients(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var sum: Double = 0
    for p in parameters { for g in p.grads { sum += Double(g * g) } }
    let norm = Float(sum.squareRoot())
    if norm > maxNorm, norm > 0 {
        let s = maxNorm / norm
        for p in parameters {
            let g = p.grads
            for i in 0..<g.count { g[i] *= s }
        }
    }
    return norm
}
