import Foundation

/// A trainable tensor: its value and the gradient the last backward pass left, both plain row-major
/// (oihw for convolutions, oi for dense layers) so optimizers and checkpoints never see a blocked
/// layout. Layers reorder weights into the layout their primitive wants.
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor
    /// Whether weight decay applies (weights yes; biases and batch-norm scale/shift no).
    public let decays: Bool
    /// Bumped on every change of `value`, so layers know when their reordered copy is stale.
    public private(set) var version = 0

    init(_ name: String, shape: [Int], decays: Bool, values: [Float]) {
        self.name = name
        self.value = Tensor(shape: shape, values: values)
        self.grad = Tensor(zeros: shape)
        self.decays = decays
    }

    public var count: Int { value.count }
    public var values: UnsafeMutableBufferPointer<Float> { value.storage }
    public var grads: UnsafeMutableBufferPointer<Float> { grad.storage }

    /// Call after writing `values`.
    public func changed() { version &+= 1 }
}

/// Whether a forward pass trains (batch statistics, dropout on, caches kept for backward) or infers.
public enum Mode: Sendable { case training, inference }


/// A network layer: a forward/backward pair. `forward` keeps what `backward` needs; `backward` takes
/// the loss gradient with respect to the output, stores parameter gradients in `Parameter.grad`, and
/// returns the gradient with respect to the input.
public protocol Layer: AnyObject {
    /// Output for input `x`: NCHW images or NF features, in the layout oneDNN picks.
    func forward(_ x: Tensor, mode: Mode) -> Tensor
    /// dL/dx from dL/dy, for the last training-mode forward.
    func backward(_ dy: Tensor) -> Tensor
    var parameters: [Parameter] { get }
    /// Non-trainable state saved with the model (batch-norm running statistics).
    var buffers: [Parameter] { get }
    /// Output shape for an input shape (batch dimension included), without running anything.
    func outputShape(_ input: [Int]) -> [Int]
    /// Multiply-adds for one image of this input shape (batch 1).
    func multiplyAdds(_ input: [Int]) -> Int
    /// Short description for model summaries.
    var summary: String { get }
    /// Set by a container when no gradient for the input is needed (the first layer).
    var skipInputGradient: Bool { get set }
    /// Runs the layer's primitives in `precision` from the next forward on (containers pass it on).
    func use(_ precision: Precision)
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var buffers: [Parameter] { [] }
    public func multiplyAdds(_ input: [Int]) -> Int { 0 }
    public var skipInputGradient: Bool { get { false } set {} }
    public func use(_ precision: Precision) {}

    public func callAsFunction(_ x: Tensor, mode: Mode = .inference) -> Tensor { forward(x, mode: mode) }
}

/// Layers applied in order; backward runs them in reverse.
public final class Sequential: Layer {
    public let layers: [Layer]
    public var skipInputGradient: Bool {
        didSet { layers.first?.skipInputGradient = skipInputGradient }
    }

    public init(_ layers: [Layer]) {
        self.layers = layers
        self.skipInputGradient = false
    }

    public convenience init(@LayerBuilder _ build: () -> [Layer]) { self.init(build()) }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        layers.reduce(x) { $1.forward($0, mode: mode) }
    }

    public func backward(_ dy: Tensor) -> Tensor {
        layers.reversed().reduce(dy) { $1.backward($0) }
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var buffers: [Parameter] { layers.flatMap(\.buffers) }
    public func use(_ precision: Precision) { layers.forEach { $0.use(precision) } }
    public func outputShape(_ input: [Int]) -> [Int] { layers.reduce(input) { $1.outputShape($0) } }

    public func multiplyAdds(_ input: [Int]) -> Int {
        var shape = input, total = 0
        for l in layers {
            total += l.multiplyAdds(shape)
            shape = l.outputShape(shape)
        }
        return total
    }

    public var summary: String { "Sequential(\(layers.count) layers)" }
}

@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ l: Layer) -> [Layer] { [l] }
    public static func buildExpression(_ ls: [Layer]) -> [Layer] { ls }
    public static func buildBlock(_ parts: [Layer]...) -> [Layer] { parts.flatMap { $0 } }
    public static func buildArray(_ parts: [[Layer]]) -> [Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Layer]?) -> [Layer] { part ?? [] }
    public static func buildEither(first: [Layer]) -> [Layer] { first }
    public static func buildEither(second: [Layer]) -> [Layer] { second }
}

/// Per-layer primitive plans, built once per (input layout, mode) and reused every step.
struct PlanCache<Plan> {
    private var plans: [Data: Plan] = [:]

    mutating func plan(for x: Tensor, mode: Mode, make: () -> Plan) -> Plan {
        var key = x.desc.key
        key.append(mode == .training ? 1 : 0)
        if let p = plans[key] { return p }
        // A long video or a photo collection can bring endless shapes: keep the cache bounded
        // (oneDNN's own primitive cache still holds the compiled kernels).
        if plans.count >= 64 { plans.removeAll() }
        let p = make()
        plans[key] = p
        return p
    }
}

/// Seeded weight initialisation, PyTorch's defaults for `nn.Linear` and `nn.Conv2d`.
enum Init {
    /// Uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)): PyTorch's kaiming_uniform(a = sqrt(5)).
    static func pytorchDefault(count: Int, fanIn: Int, rng: inout SplitMix64) -> [Float] {
        let bound = Float(1 / Double(fanIn).squareRoot())
        return (0..<count).map { _ in rng.uniform(-bound, bound) }
    }

    static func uniform(count: Int, bound: Float, rng: inout SplitMix64) -> [Float] {
        (0..<count).map { _ in rng.uniform(-bound, bound) }
    }
}
