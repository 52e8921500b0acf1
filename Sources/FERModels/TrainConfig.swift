import Foundation
import FEREngine
import FEROptimizers
import FERIO
import FERData

/// Everything that defines a training run; saved with every checkpoint so a run can be resumed and
/// a model card can say exactly how its model was made.
public struct TrainConfig: Codable, Sendable, Equatable {
    /// FER2013 (CSV or image folders); empty when the run trains on photo folders alone.
    public var data: String = ""
    /// The named recipe the run started from (`fer train --recipe`), if any; the fields below hold its values.
    public var recipe: TrainRecipe? = nil
    /// Folders of labelled photos (`ROOT/<emotion>/*` or `ROOT/train|val/<emotion>/*`), each run
    /// through the photo pipeline (detect, frame) into training faces (`PhotoFaces`).
    public var photos: [String]? = nil
    /// How the photo faces were made (detector, framing, side): the face cache's key, for the card.
    public var photoPipeline: String? = nil
    /// Sampling weight per dataset name (`datasetName`): each epoch draws weight / sum of weights of
    /// its images from that dataset. nil: every image once per epoch.
    public var mix: [String: Double]? = nil
    /// Images per epoch when mixing (nil: as many as all training sets hold).
    public var epochSize: Int? = nil
    /// Class-balanced sampling: each dataset's draw is shared among its classes in proportion to
    /// count^(1 - classBalance) (`MixedSampling.balancingClasses`): 0.5 draws a class by the square
    /// root of its count, 1 every class equally; nil: as the data holds them.
    public var classBalance: Double? = nil
    /// The validation figure that picks the best epoch, fixed before the run: "mean" (of the
    /// validation sets' accuracies) or one set's name. nil: the only (first) validation set.
    public var selectOn: String? = nil
    /// Which figure of each validation set picks the best epoch; nil: accuracy, as runs before it existed.
    public var selectBy: SelectionFigure? = nil
    /// `selectBy`, the default filled in.
    public var selectionFigure: SelectionFigure { selectBy ?? .accuracy }
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
    /// Logit adjustment's tau: the loss adds tau * log(class prior of an epoch's draw) to the logits
    /// (`SoftmaxCrossEntropy.logitOffsets`), so rare classes need a larger margin; nil: off.
    public var logitAdjustment: Float? = nil
    /// Path of fer2013new.csv to train on FER+ labels instead of FER2013's.
    public var ferplus: String? = nil
    public var ferplusMode: FERPlus.Mode = .majority
    /// FER+ blend mode: the weight of the FER+ vote distribution against FER2013's one-hot label.
    public var ferplusWeight: Float? = nil
    /// The blend weight, the default filled in.
    public var ferplusBlendWeight: Float { ferplusWeight ?? 0.5 }
    /// Distillation: trained models whose softened answers are blended into the training targets
    /// (`Distillation`), the weight of their answers, and the softmax temperature.
    public var teachers: [String]? = nil
    public var teacherWeight: Float? = nil
    public var teacherTemperature: Float? = nil
    /// The views each teacher averages (nil: the centre view only).
    public var teacherTTA: TestTimeAugmentation? = nil
    /// The teachers' weight and temperature, defaults filled in (0.5 and 2).
    public var distillation: (weight: Float, temperature: Float) { (teacherWeight ?? 0.5, teacherTemperature ?? 2) }
    /// Start from this checkpoint's weights (fine-tuning); nil: from the seeded initialisation.
    public var initFrom: String? = nil
    public var augmentation = Augmentation()
    /// Mixup's Beta(alpha, alpha) parameter (nil or 0: off).
    public var mixup: Float? = nil
    public var seed: UInt64 = 1
    /// Stop after this many epochs without a better validation accuracy (0: never).
    public var patience: Int = 0
    public var clipNorm: Float? = nil
    /// Decay per step of an exponential moving average of the weights (`WeightAverage`), which is
    /// validated and saved in place of the trained weights; nil: off.
    public var ema: Float? = nil
    public var threads: Int = 2
    /// Arithmetic of the convolutions and dense layers (nil: fp32, as runs before it existed).
    public var precision: Precision? = nil
    /// Why the run trains in `precision` when `auto` chose it (the timings it rests on).
    public var precisionChoice: String? = nil
    /// Image-folder data without a val/ folder: the fraction of train/ held out for validation.
    public var validationFraction: Double = 0.1
    /// Use only the first N training / validation images (quick experiments and tests).
    public var limit: Int? = nil
    public var validationLimit: Int? = nil

    public init() {}

    /// What "best" means on a validation set: its accuracy, or its mean recall over the classes it
    /// holds, which a rare expression moves as much as a common one (issue 34).
    public enum SelectionFigure: String, Codable, Sendable, CaseIterable {
        case accuracy, recall
        /// The figure as the logs name it.
        public var words: String { self == .accuracy ? "accuracy" : "recall (mean over classes)" }
    }

    /// A dataset's name in mixes, logs and selection: the file or folder name without extensions
    /// (`fer2013.csv.gz` -> fer2013, `data/web-photos/` -> web-photos).
    public static func datasetName(_ path: String) -> String {
        var name = (URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent)
        for ext in [".gz", ".csv"] where name.lowercased().hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        return name.isEmpty ? path : name
    }

    /// The names of every training source, in order: `data` first, then each photo folder.
    public var datasetNames: [String] { (data.isEmpty ? [] : [Self.datasetName(data)]) + (photos ?? []).map(Self.datasetName) }

    public var modelSpec: ModelSpec {
        ModelSpec(preset: preset, width: width, fcWidth: fcWidth, inputSize: inputSize, classes: Emotion.allCases.count, dropout: dropout)
    }

    /// Every field in its range, or an error naming the field, its value and what is allowed.
    public func validate() throws {
        func bad(_ m: String) -> TrainingError { .invalidConfig(m) }
        func finite(_ name: String, _ v: Float) throws { guard v.isFinite else { throw bad("\(name) must be a finite number, got \(v)") } }
        if let p = modelSpec.problem { throw bad(p) }
        let names = datasetNames
        if Set(names).count != names.count { throw bad("two datasets share a name (\(names.joined(separator: ", "))): names come from the file or folder name") }
        if let mix {
            for k in mix.keys where !names.contains(k) { throw bad("--mix names \(k), which is not a dataset of this run (\(names.joined(separator: ", ")))") }
            for (k, w) in mix where !(w.isFinite && w >= 0) { throw bad("--mix \(k) needs a weight of 0 or more, got \(w)") }
            guard mix.values.contains(where: { $0 > 0 }) else { throw bad("--mix: at least one dataset needs a weight above 0") }
        }
        if let b = classBalance { guard b.isFinite, b > 0, b <= 1 else { throw bad("--class-balance must be in (0, 1] (0.5: square-root sampling, 1: every class equally), got \(b)") } }
        if let e = epochSize { guard e >= batchSize else { throw bad("--epoch-size must be at least the batch size (\(batchSize)), got \(e)") } }
        if let s = selectOn, s != "mean", !names.contains(s) {
            throw bad("--select-on \(s): not mean or a dataset of this run (\(names.joined(separator: ", ")))")
        }
        guard epochs >= 1, epochs <= 100_000 else { throw bad("epochs must be between 1 and 100000, got \(epochs)") }
        guard batchSize >= 2, batchSize <= 4096 else { throw bad("batch size must be between 2 (batch norm needs a batch) and 4096, got \(batchSize)") }
        let o = optimizer
        for (n, v) in [("learning rate", o.learningRate), ("momentum", o.momentum), ("weight decay", o.weightDecay), ("label smoothing", labelSmoothing)] {
            try finite(n, v)
        }
        guard o.learningRate > 0, o.learningRate <= 10 else { throw bad("learning rate must be in (0, 10], got \(o.learningRate)") }
        guard o.momentum >= 0, o.momentum < 1 else { throw bad("momentum must be in [0, 1), got \(o.momentum)") }
        guard o.weightDecay >= 0, o.weightDecay < 1 else { throw bad("weight decay must be in [0, 1), got \(o.weightDecay)") }
        guard labelSmoothing >= 0, labelSmoothing < 1 else { throw bad("label smoothing must be in [0, 1), got \(labelSmoothing)") }
        let sc = schedule
        guard sc.warmupEpochs.isFinite, sc.warmupEpochs >= 0, sc.warmupEpochs <= Double(epochs) else {
            throw bad("warm-up must be between 0 and the number of epochs (\(epochs)), got \(sc.warmupEpochs)")
        }
        guard sc.stepEpochs >= 1 else { throw bad("step epochs must be at least 1, got \(sc.stepEpochs)") }
        guard sc.gamma > 0, sc.gamma <= 1 else { throw bad("gamma must be in (0, 1], got \(sc.gamma)") }
        guard sc.patience >= 1 else { throw bad("plateau patience must be at least 1, got \(sc.patience)") }
        if let c = clipNorm { guard c.isFinite, c > 0 else { throw bad("gradient clipping norm must be positive, got \(c)") } }
        if let d = ema { guard d.isFinite, d > 0, d < 1 else { throw bad("--ema: the average's decay must be in (0, 1), such as 0.999, got \(d)") } }
        let a = augmentation
        guard a.rotation.isFinite, a.rotation >= 0, a.rotation <= 180 else { throw bad("rotation must be between 0 and 180 degrees, got \(a.rotation)") }
        guard a.shift.isFinite, a.shift >= 0, a.shift <= 0.5 else { throw bad("shift must be between 0 and 0.5 of the side, got \(a.shift)") }
        guard a.scale.isFinite, a.scale >= 0, a.scale < 1 else { throw bad("scale must be in [0, 1), got \(a.scale)") }
        guard a.erasing.isFinite, a.erasing >= 0, a.erasing <= 1 else { throw bad("erasing probability must be in [0, 1], got \(a.erasing)") }
        if let p = a.photometric?.problem { throw bad("photometric augmentation: \(p)") }
        if let m = mixup { guard m.isFinite, m >= 0, m <= 10 else { throw bad("mixup alpha must be between 0 (off) and 10, got \(m)") } }
        guard patience >= 0 else { throw bad("patience must be 0 (off) or more, got \(patience)") }
        guard threads >= 1, threads <= 256 else { throw bad("threads must be between 1 and 256, got \(threads)") }
        guard validationFraction > 0, validationFraction < 1 else { throw bad("validation fraction must be in (0, 1), got \(validationFraction)") }
        if let l = limit { guard l >= batchSize else { throw bad("--limit must be at least the batch size (\(batchSize)), got \(l)") } }
        if let l = validationLimit { guard l >= 1 else { throw bad("--val-limit must be at least 1, got \(l)") } }
        if let w = ferplusWeight { guard w >= 0, w <= 1 else { throw bad("FER+ weight must be in [0, 1], got \(w)") } }
        if let w = teacherWeight { guard w > 0, w <= 1 else { throw bad("teacher weight must be in (0, 1], got \(w)") } }
        if let t = teacherTemperature { guard t >= 0.1, t <= 20 else { throw bad("teacher temperature must be between 0.1 and 20, got \(t)") } }
        if (teacherWeight != nil || teacherTemperature != nil || teacherTTA != nil) && (teachers ?? []).isEmpty { throw bad("a teacher weight, temperature or TTA needs teachers") }
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
