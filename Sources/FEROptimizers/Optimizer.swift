import Foundation
import FEREngine

/// Updates parameters from their gradients. Updates are elementwise over plain buffers; oneDNN has no
/// optimizer primitives, and these loops vectorise.
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
    var velocity: [[Float]]
    public private(set) var stepCount = 0

    init(_ parameters: [Parameter], config: OptimizerConfig) {
        self.parameters = parameters
        learningRate = config.learningRate
        momentum = config.momentum
        weightDecay = config.weightDecay
        nesterov = config.nesterov
        velocity = parameters.map { .init(repeating: 0, count: $0.count) }
    }

    public func step() {
        stepCount += 1
        let lr = learningRate, mu = momentum
        for (pi, p) in parameters.enumerated() {
            let w = p.values, g = p.grads
            let wd = p.decays ? weightDecay : 0
            velocity[pi].withUnsafeMutableBufferPointer { v in
                for i in 0..<w.count {
                    let grad = g[i] + wd * w[i]
                    v[i] = mu * v[i] + grad
                    w[i] -= lr * (nesterov ? grad + mu * v[i] : v[i])
                }
            }
            p.changed()
        }
    }

    public var state: [String: [Float]] {
        var s: [String: [Float]] = ["step": [Float(stepCount)]]
        for (p, v) in zip(parameters, velocity) { s["velocity." + p.name] = v }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        stepCount = Int(state["step"]?.first ?? 0)
        for (i, p) in parameters.enumerated() {
            guard let v = state["velocity." + p.name], v.count == p.count else { throw OptimizerError.missingState(p.name) }
            velocity[i] = v
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
    var m: [[Float]], v: [[Float]]
    public private(set) var stepCount = 0

    init(_ parameters: [Parameter], config: OptimizerConfig, decoupled: Bool) {
        self.parameters = parameters
        learningRate = config.learningRate
        beta1 = config.beta1
        beta2 = config.beta2
        epsilon = config.epsilon
        weightDecay = config.weightDecay
        self.decoupled = decoupled
        m = parameters.map { .init(repeating: 0, count: $0.count) }
        v = m
    }

    public func step() {
        stepCount += 1
        let b1 = beta1, b2 = beta2, eps = epsilon, lr = learningRate
        let c1 = 1 - pow(b1, Float(stepCount)), c2 = 1 - pow(b2, Float(stepCount))
        let stepSize = lr / c1, c2root = c2.squareRoot()
        for (pi, p) in parameters.enumerated() {
            let w = p.values, g = p.grads
            let wd = p.decays ? weightDecay : 0
            let l2 = decoupled ? 0 : wd, shrink = decoupled ? 1 - lr * wd : 1
            m[pi].withUnsafeMutableBufferPointer { m in
                v[pi].withUnsafeMutableBufferPointer { v in
                    for i in 0..<w.count {
                        let grad = g[i] + l2 * w[i]
                        m[i] = b1 * m[i] + (1 - b1) * grad
                        v[i] = b2 * v[i] + (1 - b2) * grad * grad
                        w[i] = w[i] * shrink - stepSize * m[i] / (v[i].squareRoot() / c2root + eps)
                    }
                }
            }
            p.changed()
        }
    }

    public var state: [String: [Float]] {
        var s: [String: [Float]] = ["step": [Float(stepCount)]]
        for (i, p) in parameters.enumerated() {
            s["m." + p.name] = m[i]
            s["v." + p.name] = v[i]
        }
        return s
    }

    public func load(state: [String: [Float]]) throws {
        stepCount = Int(state["step"]?.first ?? 0)
        for (i, p) in parameters.enumerated() {
            guard let mi = state["m." + p.name], let vi = state["v." + p.name], mi.count == p.count, vi.count == p.count
            else { throw OptimizerError.missingState(p.name) }
            m[i] = mi
            v[i] = vi
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
