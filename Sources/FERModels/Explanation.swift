import FERData
import FEREngine

/// Why the model said it: a Grad-CAM map of one face (`GradCAM`), laid over the face as stored.
public struct Explanation: Sendable {
    /// The class explained (the top one unless another was asked for) and its probability.
    public var classIndex: Int
    public var probability: Float
    /// [side * side] over the stored face (`Classifier.sourceSide`, 48 for FER2013), in [0, 1]:
    /// the network's map resampled to its input crop, placed where the crop lies (the centre), 0
    /// outside it.
    public var heat: [Float]
    public var side: Int
}

extension Classifier {
    /// The Grad-CAM explanation of one stored face (`sourceSide` x `sourceSide` gray bytes), on the
    /// trained layers in fp32 (one forward and one backward pass through the head); nil for a network
    /// without convolutions (the MLP has no map).
    public func explain(face: [UInt8], classIndex: Int? = nil) -> Explanation? {
        precondition(face.count == sourceSide * sourceSide, "\(face.count) bytes for a \(sourceSide)x\(sourceSide) face")
        let data = FaceDataset(side: sourceSide, images: face, labels: [0], classNames: classNames)
        guard let map = GradCAM.map(network, input: evaluationBatch(data, 0..<1, size: spec.inputSize).tensor(), classIndex: classIndex) else { return nil }
        let size = spec.inputSize, offset = (sourceSide - size) / 2  // view 0 is the centre crop
        var heat = [Float](repeating: 0, count: sourceSide * sourceSide)
        for y in 0..<size {
            for x in 0..<size {
                heat[(offset + y) * sourceSide + offset + x] = map.sample(x: (Double(x) + 0.5) / Double(size), y: (Double(y) + 0.5) / Double(size))
            }
        }
        let probabilities = LogSoftmax.shared.probabilities(Tensor(shape: [1, map.logits.count], values: map.logits.map { $0 / temperature }))
        return Explanation(classIndex: map.classIndex, probability: probabilities[map.classIndex], heat: heat, side: sourceSide)
    }
}

extension GradCAM.Map {
    /// The map at (x, y) in [0, 1] of the input's width and height, interpolated between cell centres.
    public func sample(x: Double, y: Double) -> Float {
        let fx = min(max(x * Double(width) - 0.5, 0), Double(width - 1)), fy = min(max(y * Double(height) - 0.5, 0), Double(height - 1))
        let x0 = Int(fx), y0 = Int(fy), x1 = min(x0 + 1, width - 1), y1 = min(y0 + 1, height - 1)
        let tx = Float(fx - Double(x0)), ty = Float(fy - Double(y0))
        let top = values[y0 * width + x0] * (1 - tx) + values[y0 * width + x1] * tx
        let bottom = values[y1 * width + x0] * (1 - tx) + values[y1 * width + x1] * tx
        return top * (1 - ty) + bottom * ty
    }
}
