import Foundation
import FEREngine
import FERData

/// A network with everything needed to use it: its spec, class names and preprocessing.
/// Inference takes 48x48 gray faces (bytes) and returns class probabilities.
public final class Classifier {
    public let spec: ModelSpec
    public let network: Sequential
    public let classNames: [String]
    /// Side of the stored faces the input crop is taken from (48 for FER2013).
    public let sourceSide: Int

    public init(spec: ModelSpec, network: Sequential? = nil, classNames: [String] = Emotion.names, sourceSide: Int = 48, seed: UInt64 = 1) {
        precondition(classNames.count == spec.classes, "\(classNames.count) class names for \(spec.classes) classes")
        self.spec = spec
        self.network = network ?? spec.build(seed: seed)
        self.classNames = classNames
        self.sourceSide = sourceSide
    }

    /// What the logits are divided by before the softmax (the card's calibrated temperature; 1 if none).
    public var temperature: Float = 1

    public var parameterCount: Int { network.parameters.reduce(0) { $0 + $1.count } }
    public var multiplyAdds: Int { network.multiplyAdds(spec.inputShape) }

    /// The network lowered for fast inference (`compile`); nil runs `network` layer by layer in fp32.
    public private(set) var compiled: InferenceNetwork?

    /// The int8 activation ranges a model file may carry (`fer calibrate int8`).
    public static let int8RangesTensor = "int8.ranges"

    /// Runs inference through an `InferenceNetwork` in `precision` (batch norms folded, ReLUs fused;
    /// int8 needs `ranges`). Training still uses `network`; call again after changing its weights.
    public func compile(_ precision: Precision, ranges: [Float]? = nil) throws {
        compiled = try InferenceNetwork(network, inputShape: spec.inputShape, precision: precision, ranges: ranges)
    }

    /// "fp32", "bf16" or "int8": what inference runs in.
    public var precisionName: String { compiled?.precision.rawValue ?? "fp32" }

    /// Logits for a batch tensor [N, 1, size, size].
    public func logits(_ x: Tensor) -> Tensor { compiled?.forward(x) ?? network.forward(x, mode: .inference) }

    /// Class probabilities for a prepared batch whose rows are `views` consecutive views per face,
    /// averaged over the views; `temperature` divides the logits first (the model's own by default;
    /// distillation softens with its own T > 1 instead).
    public func probabilities(_ batch: Batch, views: Int = 1, temperature: Float? = nil) -> [[Float]] {
        let temperature = temperature ?? self.temperature
        var z = logits(batch.tensor())
        if temperature != 1 { z = Tensor(shape: z.shape, values: z.plainValues().map { $0 / temperature }) }
        let p = LogSoftmax.shared.probabilities(z)
        let k = spec.classes, faces = batch.images.count / (spec.inputSize * spec.inputSize) / views
        return (0..<faces).map { f in
            (0..<k).map { c in (0..<views).reduce(Float(0)) { $0 + p[(f * views + $1) * k + c] } / Float(views) }
        }
    }

    /// Probabilities for faces given as side x side gray bytes each (`sourceSide`, e.g. 48x48).
    public func classify(faces: [[UInt8]], tta: TestTimeAugmentation = .none, batchSize: Int = 64) -> [[Float]] {
        let data = FaceDataset(side: sourceSide, images: faces.flatMap { $0 }, labels: .init(repeating: 0, count: faces.count), classNames: classNames)
        return classify(data, tta: tta, batchSize: batchSize)
    }

    public func classify(_ data: FaceDataset, tta: TestTimeAugmentation = .none, batchSize: Int = 64,
                         progress: ((Int) -> Void)? = nil) -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(data.count)
        let perBatch = max(1, batchSize / tta.views)
        for r in evaluationRanges(data, batchSize: perBatch) {
            out += probabilities(evaluationBatch(data, r, size: spec.inputSize, tta: tta), views: tta.views)
            progress?(out.count)
        }
        return out
    }
}
