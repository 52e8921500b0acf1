/// Grad-CAM (Selvaraju et al., 2017): where in the input the evidence for one class lies.
///
/// The network is cut after its last spatial block (the last convolution, batch norm or residual
/// block, with the ReLU that follows it): A, [1, C, H, W]. The layers up to A run as in inference
/// (running statistics); the head after A runs forward once keeping its caches, then backward once
/// from the class's logit (dropout off, as in inference), which gives dy/dA. Then
///     alpha_c = mean_ij dy/dA_cij,      map = ReLU(sum_c alpha_c A_c)      (H x W, scaled to max 1)
/// so a map costs one forward and one backward pass through the head.
public enum GradCAM {
    public struct Map: Sendable {
        /// [H * W], row-major, in [0, 1]: 1 where the evidence is strongest (all 0 where none is positive).
        public var values: [Float]
        public var height: Int, width: Int
        /// The class the map explains, and the network's logits for the input.
        public var classIndex: Int
        public var logits: [Float]
    }

    /// Where the head starts: the index after the last spatial block (and its ReLU); nil for a
    /// network without one (the MLP).
    public static func headStart(_ network: Sequential) -> Int? {
        guard let last = network.layers.lastIndex(where: { $0 is Conv2D || $0 is BatchNorm || $0 is Residual }) else { return nil }
        let next = last + 1
        return next < network.layers.count && network.layers[next] is ReLU ? next + 1 : next
    }

    /// The map of `classIndex` (nil: the class with the largest logit) for one input, [1, C, H, W].
    public static func map(_ network: Sequential, input: Tensor, classIndex: Int? = nil) -> Map? {
        guard input.shape.first == 1, let start = headStart(network), start < network.layers.count else { return nil }
        // [1, C, H, W]: the last spatial block's output, as inference computes it.
        let activation = network.layers[..<start].reduce(input) { $1.forward($0, mode: .inference) }
        let shape = activation.shape
        guard shape.count == 4 else { return nil }
        let head = network.layers[start...].filter { !($0 is Dropout) }  // dropout is the identity in inference
        // [1, K]: the logits, the head's caches kept for backward.
        let logits = head.reduce(activation) { $1.forward($0, mode: .training) }.plainValues()
        let k = logits.count
        let target = classIndex ?? logits.indices.max { logits[$0] < logits[$1] } ?? 0
        guard (0..<k).contains(target) else { return nil }
        // dy/dA, [1, C, H, W], from a one-hot gradient at the logits.
        var seed = [Float](repeating: 0, count: k)
        seed[target] = 1
        let gradient = head.reversed().reduce(Tensor(shape: [1, k], values: seed)) { $1.backward($0) }.plainValues()
        for p in head.flatMap(\.parameters) { p.grads.update(repeating: 0) }  // leave no gradient behind
        let a = activation.plainValues()
        let c = shape[1], hw = shape[2] * shape[3]
        var values = [Float](repeating: 0, count: hw)
        for ch in 0..<c {
            var alpha: Float = 0
            for i in 0..<hw { alpha += gradient[ch * hw + i] }
            alpha /= Float(hw)
            for i in 0..<hw { values[i] += alpha * a[ch * hw + i] }
        }
        let top = values.max() ?? 0
        values = values.map { top > 0 ? max($0, 0) / top : 0 }
        return Map(values: values, height: shape[2], width: shape[3], classIndex: target, logits: logits)
    }
}
