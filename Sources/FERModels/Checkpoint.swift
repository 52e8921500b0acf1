import FEREngine
import FERIO
import Foundation

/// What a saved model carries besides its weights: enough to rebuild and use it, and to say how it
/// was made. Stored as JSON inside the safetensors metadata (key "swift-fer") and beside it.
public struct ModelCard: Codable, Sendable {
    public var format = "swift-fer/1"
    public var spec: ModelSpec
    public var classNames: [String]
    /// Preprocessing the network expects: gray faces resized to sourceSide, centre crop of
    /// spec.inputSize, scaled to [0, 1].
    public var sourceSide: Int = 48
    public var preprocessing = "gray, resize to 48x48 (area), centre crop to inputSize, x/255"
    public var training: TrainConfig?
    public var epoch: Int = 0
    public var metrics: [String: Double] = [:]
    /// For a model soup (`fer soup`): the files whose weights were averaged into it.
    public var soup: [String]? = nil
    /// Their shares of the mean, when not equal (`fer soup --weights`).
    public var soupWeights: [Float]? = nil
    /// Divides the logits before the softmax, fitted on PublicTest so that confidences mean what they
    /// say (`fer calibrate temperature`); nil is 1. It never changes which class wins.
    public var temperature: Float? = nil

    public init(spec: ModelSpec, classNames: [String], training: TrainConfig? = nil) {
        self.spec = spec
        self.classNames = classNames
        self.training = training
    }
}

public enum CheckpointError: Error, CustomStringConvertible {
    case notAModel(String)
    case missingTensor(String, String)
    case shapeMismatch(String, String, expected: [Int], found: [Int])
    case invalid(String, String)

    public var description: String {
        switch self {
        case .notAModel(let p): return "\(p): not a swift-fer model (no 'swift-fer' metadata)"
        case .missingTensor(let p, let t): return "\(p): tensor '\(t)' is missing"
        case .shapeMismatch(let p, let t, let e, let f): return "\(p): tensor '\(t)' has shape \(f), expected \(e)"
        case .invalid(let p, let m): return "\(p): \(m)"
        }
    }
}

public enum Checkpoint {
    /// The model's weights and running statistics plus its card, as safetensors.
    public static func encode(_ model: Classifier, card: ModelCard, extra: SafeTensors? = nil) throws -> SafeTensors {
        var st = SafeTensors()
        for p in model.network.parameters + model.network.buffers {
            st.add(p.name, shape: p.value.shape, values: Array(p.values))
        }
        if let extra {
            for t in extra.tensors { st.add(t.name, shape: t.shape, values: t.values) }
            st.metadata.merge(extra.metadata) { $1 }
        }
        let json = try JSONEncoder.sorted.encode(card)
        st.metadata["swift-fer"] = String(decoding: json, as: UTF8.self)
        return st
    }

    /// `half` stores the weights as F16 (half the size; for shipping, not for resuming training).
    public static func save(_ model: Classifier, card: ModelCard, to path: String, extra: SafeTensors? = nil, half: Bool = false) throws {
        try encode(model, card: card, extra: extra).write(path, as: half ? .f16 : .f32)
    }

    /// Writes `model` as a new version of the model file `source` was read from, keeping what that
    /// file carries: its storage (an F16 file stays F16 unless `half` says otherwise) and its int8
    /// activation ranges, unless `keepRanges` is false because the weights changed (a soup) and the
    /// ranges no longer describe them. Every command that writes a model it read goes through here.
    public static func save(_ model: Classifier, card: ModelCard, to path: String, like source: SafeTensors,
                            keepRanges: Bool = true, half: Bool? = nil) throws {
        var extra = SafeTensors()
        if keepRanges, let r = source[Classifier.int8RangesTensor] { extra.add(Classifier.int8RangesTensor, shape: [r.values.count], values: r.values) }
        try save(model, card: card, to: path, extra: extra.tensors.isEmpty ? nil : extra, half: half ?? (source.storedAs == .f16))
    }

    /// Rebuilds the model a file describes and loads its weights.
    public static func load(_ path: String) throws -> (Classifier, ModelCard, SafeTensors) {
        let st = try SafeTensors.read(path)
        guard let json = st.metadata["swift-fer"], let card = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) else {
            throw CheckpointError.notAModel(path)
        }
        try validate(card, path: path)
        let model = Classifier(spec: card.spec, classNames: card.classNames, sourceSide: card.sourceSide)
        try restore(model, from: st, path: path)
        model.temperature = card.temperature ?? 1
        return (model, card, st)
    }

    /// A card that describes a network this program can build and run.
    static func validate(_ card: ModelCard, path: String) throws {
        if let p = card.spec.problem { throw CheckpointError.invalid(path, "its architecture is unusable: \(p)") }
        guard card.classNames.count == card.spec.classes else {
            throw CheckpointError.invalid(path, "\(card.classNames.count) class names for a network with \(card.spec.classes) outputs")
        }
        guard Set(card.classNames).count == card.classNames.count, card.classNames.allSatisfy({ !$0.isEmpty && $0.count <= 64 }) else {
            throw CheckpointError.invalid(path, "class names must be distinct, non-empty and short: \(card.classNames.prefix(8))")
        }
        if let t = card.temperature, !(t.isFinite && t >= 0.05 && t <= 20) {
            throw CheckpointError.invalid(path, "temperature \(t) is outside 0.05-20")
        }
        guard card.sourceSide >= card.spec.inputSize, card.sourceSide <= 256 else {
            throw CheckpointError.invalid(path, "source side \(card.sourceSide) does not fit input size \(card.spec.inputSize)")
        }
    }

    /// Checks that the model file `st` answers over `model`'s classes, named alike and in the same
    /// order (a fine-tune's start, a teacher): a model whose classes are permuted would pass every
    /// shape check and train on swapped labels. `role` names it in the error.
    public static func checkClasses(_ st: SafeTensors, path: String, matching classNames: [String], role: String) throws {
        guard let json = st.metadata["swift-fer"], let card = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) else {
            throw CheckpointError.notAModel(path)
        }
        guard card.classNames == classNames else {
            throw CheckpointError.invalid(path, "\(role): its classes are \(card.classNames.joined(separator: ", ")); this run's are \(classNames.joined(separator: ", ")) (the same names in the same order)")
        }
    }

    /// Loads `st`'s weights into `model` (same architecture), checking every name, shape and value:
    /// weights must be finite, and batch-norm variances non-negative. `prefix` reads the tensors
    /// stored under it (a second network kept in the same file, such as a weight average).
    public static func restore(_ model: Classifier, from st: SafeTensors, path: String, prefix: String = "") throws {
        for p in model.network.parameters + model.network.buffers {
            let name = prefix + p.name
            guard let t = st[name] else { throw CheckpointError.missingTensor(path, name) }
            guard t.shape == p.value.shape else { throw CheckpointError.shapeMismatch(path, name, expected: p.value.shape, found: t.shape) }
            if let bad = t.values.firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError.invalid(path, "tensor '\(name)' holds \(t.values[bad]) at index \(bad); weights must be finite")
            }
            if p.name.hasSuffix("running_var"), let bad = t.values.firstIndex(where: { $0 < 0 }) {
                throw CheckpointError.invalid(path, "tensor '\(name)' holds a negative variance (\(t.values[bad]) at index \(bad))")
            }
            let dst = p.values
            for i in 0..<t.values.count { dst[i] = t.values[i] }
            p.changed()
        }
    }
}
