import FEREngine
import FEROptimizers
import FERIO
import FERData

/// Everything that defines a training run; saved with every checkpoint so a run can be resumed and
/// a model card can say exactly how its model was made.
public struct TrainConfig: Codable, Sendable, Equatable {
    public var data: String = ""
    public var preset: Preset = .cnn
    public var width: Int? = nil
    public var fcWidth: Int = 0
    public var inputSize: Int = 48
    public var dropout: Float? = nil
    public var epochs: Int = 30
    public var batchSize: Int = 64
    public var optimizer = OptimizerConfig()
    public var schedule = ScheduleConfig()
    public var labelSmoothing: Float = 0
    /// Weight classes inversely to their frequency in the training split.
    public var balancedClassWeights = false
    /// Path of fer2013new.csv to train on FER+ labels instead of FER2013's.
    public var ferplus: String? = nil
    public var ferplusMode: FERPlus.Mode = .majority
    /// FER+ blend mode: the weight of the FER+ vote distribution against FER2013's one-hot label.
    public var ferplusWeight: Float? = nil
    /// Start from this checkpoint's weights (fine-tuning); nil: from the seeded initialisation.
    public var initFrom: String? = nil
    public var augmentation = Augmentation()
    public var seed: UInt64 = 1
    /// Stop after this many epochs without a better validation accuracy (0: never).
    public var patience: Int = 0
    public var clipNorm: Float? = nil
    public var threads: Int = 2
    /// Image-folder data without a val/ folder: the fraction of train/ held out for validation.
    public var validationFraction: Double = 0.1
    /// Use only the first N training / validation images (quick experiments and tests).
    public var limit: Int? = nil
    public var validationLimit: Int? = nil

    public init() {}

    public var modelSpec: ModelSpec {
        ModelSpec(preset: preset, width: width, fcWidth: fcWidth, inputSize: inputSize, classes: Emotion.allCases.count, dropout: dropout)
    }

    public func validate() throws {
        func bad(_ m: String) -> TrainingError { .invalidConfig(m) }
        guard epochs > 0 else { throw bad("epochs must be positive") }
        guard batchSize >= 2 else { throw bad("batch size must be at least 2 (batch norm needs a batch)") }
        guard inputSize >= 16, inputSize <= 48 else { throw bad("input size must be between 16 and 48 (a crop of the 48x48 faces)") }
        guard optimizer.learningRate > 0 else { throw bad("learning rate must be positive") }
        guard labelSmoothing >= 0, labelSmoothing < 1 else { throw bad("label smoothing must be in [0, 1)") }
        guard threads >= 1 else { throw bad("threads must be at least 1") }
        guard validationFraction > 0, validationFraction < 1 else { throw bad("validation fraction must be in (0, 1)") }
        if let w = ferplusWeight { guard w >= 0, w <= 1 else { throw bad("FER+ weight must be in [0, 1]") } }
        if let p = augmentation.photometric?.problem { throw bad("photometric augmentation: \(p)") }
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case invalidConfig(String)
    case noTrainingData(String)
    case resumeMismatch(String)

    public var description: String {
        switch self {
        case .invalidConfig(let m): return "invalid training configuration: \(m)"
        case .noTrainingData(let m): return "no training data: \(m)"
        case .resumeMismatch(let m): return "cannot resume: \(m)"
        }
    }
}
