/// [N, C, H, W] -> [N, C*H*W] in NCHW order (PyTorch's `flatten(1)`), reordering a blocked input to
/// plain first. `Dense` reads 4-D inputs directly, so convolutional presets do not need this; the
/// MLP uses it to make its input a plain feature vector.
public final class Flatten: Layer {
    private var inputShape: [Int] = []

    public init() {}

    public func outputShape(_ s: [Int]) -> [Int] { [s[0], s.dropFirst().reduce(1, *)] }
    public var summary: String { "Flatten" }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        inputShape = x.shape
        return x.laidOut(as: .plain(x.shape)).reshaped(outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        dy.laidOut(as: .plain(dy.shape)).reshaped(inputShape)
    }
}
