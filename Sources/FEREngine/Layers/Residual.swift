import CDNNL
import Foundation

/// A residual connection: y = body(x) + shortcut(x), the shortcut being the identity or a projection
/// (1x1 convolution and batch norm) when the shape changes. The sum is oneDNN's binary add: a JIT
/// kernel in every layout, where its sum primitive runs a reference loop on channel-padded blocks.
///
/// backward: dy flows into both branches; dx = body'(dy) + shortcut'(dy)
public final class Residual: Layer {
    public let body: Layer
    public let shortcut: Layer?
    private var adds: [Data: Primitive] = [:]
    public var skipInputGradient = false

    public init(_ body: Layer, shortcut: Layer? = nil) {
        self.body = body
        self.shortcut = shortcut
    }

    public var parameters: [Parameter] { body.parameters + (shortcut?.parameters ?? []) }
    public var buffers: [Parameter] { body.buffers + (shortcut?.buffers ?? []) }
    public func use(_ precision: Precision) { body.use(precision); shortcut?.use(precision) }
    public func outputShape(_ s: [Int]) -> [Int] { body.outputShape(s) }
    public func multiplyAdds(_ s: [Int]) -> Int { body.multiplyAdds(s) + (shortcut?.multiplyAdds(s) ?? 0) + body.outputShape(s).dropFirst().reduce(1, *) }
    public var summary: String { "Residual(\(shortcut == nil ? "identity" : "projection"))" }

    /// a + b in a's layout.
    private func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        let b = b.laidOut(as: a.desc)
        let key = a.desc.key
        let add = adds[key] ?? {
            var src = a.desc, dst = a.desc
            var desc = dnnl_binary_desc_t()
            check(dnnl_binary_desc_init(&desc, dnnl_binary_add, &src, &src, &dst), "binary add desc")
            let p = Primitive(&desc, "binary add")
            adds[key] = p
            return p
        }()
        let y = Tensor(desc: a.desc, zeroed: false)
        add.execute([(DNNL_ARG_SRC_0, a), (DNNL_ARG_SRC_1, b), (DNNL_ARG_DST, y)])
        return y
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        add(body.forward(x, mode: mode), shortcut?.forward(x, mode: mode) ?? x)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dBody = body.backward(dy)
        let dShort = shortcut?.backward(dy) ?? dy
        return add(dBody, dShort)
    }
}
