import ArgumentParser
import FER
import FERData
import FERIO
import FEREngine
import FERModels
import FERVision
import Foundation

extension DetectorKind: ExpressibleByArgument {}

/// `--threads`, declared once for every command that runs the engine.
struct ThreadOptions: ParsableArguments {
    @Option(help: "oneDNN threads.") var threads = ExpressionRecognizer.Configuration().threads

    func validate() throws {
        if let p = ExpressionRecognizer.Configuration.threadsProblem(threads) { throw ValidationError(p) }
    }

    func apply() { DNNL.setThreads(threads) }
}

extension PrecisionChoice: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension TrainConfig.SelectionFigure: ExpressibleByArgument {}

/// Says on standard error how `auto` chose, when it was measured now (the first run of this work
/// on this CPU), not when it came from the cache.
/// And warns when a named arithmetic runs emulated here (bf16 without AVX-512 BF16: slow).
func note(_ decision: AutoPrecision.Decision?, _ setting: String, named: PrecisionChoice = .auto) {
    if let w = named.fixed?.emulationWarning { FileHandle.standardError.write(Data("warning: \(setting) \(named.rawValue): \(w)\n".utf8)) }
    guard let d = decision, !d.cached, d.seconds.count > 1 else { return }
    FileHandle.standardError.write(Data("\(setting) auto: \(d.reason); kept in \(AutoPrecision.defaultCacheFile)\n".utf8))
}

/// A library error about an option, as the command line's one-line error naming the option.
func optionError<T>(_ option: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as RecognizerError {
        if case .unknownModel = e { throw ValidationError("\(option) \(e)") }
        throw ValidationError("\(e)")
    }
}

/// `--model` alone, for the commands that read a model's weights as they are (calibrate int8
/// ranges, priors): no arithmetic to choose.
struct ModelFileOptions: ParsableArguments {
    @Option(help: "Model file (.safetensors), or a bundled model: default, fast, fer2013 (see `fer models`).") var model: String?

    /// The model file: a path as it is, a bundled name resolved, nil the default model.
    func resolved() throws -> String { try optionError("--model") { try BundledModels.resolve(model) } }
    /// The model's weights as they are (fp32, nothing measured), its card and its file's tensors.
    func load() throws -> ExpressionRecognizer.LoadedModel { try optionError("--model") { try ExpressionRecognizer.loadModel(model, precision: .fp32) } }
}

/// `--model`: a trained model to run, by file or bundled name, and the arithmetic to run it in.
struct ModelOptions: ParsableArguments {
    @OptionGroup var file: ModelFileOptions
    @Option(help: "Inference arithmetic: auto (the fastest measured on this CPU among those it runs natively: fp32, int8 with int8 ranges on AVX2 or later, bf16 with AVX-512 BF16), fp32, bf16, int8.")
    var precision = ExpressionRecognizer.Configuration().precision

    var model: String? { file.model }

    func load() throws -> Classifier { try loadFile().classifier }

    /// The classifier, ready in the chosen precision, with the card and tensors of its file.
    func loadFile() throws -> ExpressionRecognizer.LoadedModel {
        let loaded = try optionError("--model") { try ExpressionRecognizer.loadModel(model, precision: precision) }
        note(loaded.decision, "--precision", named: precision)
        return loaded
    }
}

/// The face detector's options. The cascade-only ones are an error with MTCNN rather than ignored.
struct DetectorOptions: ParsableArguments {
    @Option(help: "Face detector: mtcnn, or the OpenCV cascades haar, haar-alt2, lbp.") var detector: DetectorKind = .mtcnn
    @Option(help: "Smallest face side, pixels (the classifier's input is 48x48).") var minSize: Int = DetectorSettings().minFace
    @Option(help: "Detect on a copy whose longer side is at most this (0: full size).") var detectSide: Int = DetectorSettings().maxSide
    @Option(help: "Cascades only: pyramid step, above 1 (default 1.1).") var scaleFactor: Double?
    @Option(help: "Cascades only: overlapping hits needed per face, 1 or more (default 5).") var minNeighbors: Int?
    @Option(help: "MTCNN's arithmetic: auto (the fastest measured on this CPU, as --precision; int8 only with VNNI, where its 8-bit weights keep every face), fp32, bf16, int8.")
    var detectorPrecision = ExpressionRecognizer.Configuration().detectorPrecision

    var settings: DetectorSettings {
        var s = DetectorSettings(kind: detector)
        s.minFace = minSize
        s.maxSide = detectSide
        if let f = scaleFactor { s.scaleFactor = f }
        if let n = minNeighbors { s.minNeighbors = n }
        return s
    }

    func validate() throws {
        if !detector.takesCascadeOptions, scaleFactor != nil || minNeighbors != nil {
            throw ValidationError("--scale-factor and --min-neighbors tune the cascades (\(DetectorKind.allCases.filter(\.takesCascadeOptions).map(\.rawValue).joined(separator: ", "))), not --detector \(detector.rawValue)")
        }
        if let p = ExpressionRecognizer.Configuration.detectorProblem(settings, precision: detectorPrecision) { throw ValidationError(p) }
    }

    /// `settings` with MTCNN's arithmetic resolved for this CPU.
    func resolvedSettings() throws -> DetectorSettings {
        let (resolved, decision) = try optionError("--detector-precision") { try ExpressionRecognizer.detectorSettings(settings, precision: detectorPrecision) }
        note(decision, "--detector-precision", named: detectorPrecision)
        return resolved
    }

    func make() throws -> FaceDetector { try makeFaceDetector(try resolvedSettings(), mtcnnWeights: try BundledModels.mtcnnWeights) }
}

/// Options shared by the commands that find and label faces.
struct FaceOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions
    @OptionGroup var detection: DetectorOptions
    @Option(help: "Crop the detected box plus this fraction of its size per side, instead of the calibrated FER2013 framing.") var margin: Double?
    @Option(help: "Test-time augmentation: none, flip, tencrop.") var tta = FaceReading().tta
    @Flag(help: "Level the eyes (MTCNN's landmarks) before classifying.") var align = false
    @Option(help: "Photos with no face found are searched again inside a border of this fraction of their longer side (0: off).")
    var borderRetry = FaceReading().borderRetry
    @Option(help: "Largest image, pixels, read from its header before decoding; larger ones are refused.") var maxPixels = FaceReading().maxPixels
    @OptionGroup var threads: ThreadOptions

    /// The library's settings these options give: the one place the command line meets them.
    var configuration: ExpressionRecognizer.Configuration {
        var c = ExpressionRecognizer.Configuration(model: model.model)
        c.precision = model.precision
        c.detector = detection.settings
        c.detectorPrecision = detection.detectorPrecision
        c.reading = FaceReading(margin: margin, tta: tta, align: align, borderRetry: borderRetry, maxPixels: maxPixels)
        c.threads = threads.threads
        return c
    }

    func validate() throws {
        if let p = configuration.problem { throw ValidationError(p) }
    }

    func recognizer() throws -> ExpressionRecognizer {
        let r = try optionError("--model") { try ExpressionRecognizer(configuration) }
        for (setting, decision) in r.decisions { note(decision, setting) }
        note(nil, "--precision", named: model.precision)
        note(nil, "--detector-precision", named: detection.detectorPrecision)
        return r
    }

    func analyzer() throws -> FaceAnalyzer { try recognizer().analyzer }
}

extension Preset: ExpressibleByArgument {}

/// The architecture of a network to build: a preset and its sizes (train, bench, models).
struct ArchitectureOptions: ParsableArguments {
    @Option(help: "Preset: mlp, cnn, vgg, resnet (see `fer models`; default: \(TrainConfig().preset.rawValue)).") var preset: Preset?
    @Option(help: "First-stage width: channels, 1-256 (hidden units for mlp, 1-8192).") var width: Int?
    @Option(help: "Hidden units of the VGG head (0, the default: 64 x width).") var fcWidth: Int?
    @Option(help: "Input side: 48 (the default), or a random crop of the 48x48 face such as 44 or 40.") var inputSize: Int?
    @Option(help: "Dropout probability before the classifier, in [0, 1).") var dropout: Float?

    /// The network these options describe, TrainConfig's defaults for what they leave out (`fer train`
    /// fills them from its recipe instead).
    var spec: ModelSpec {
        let base = TrainConfig()
        return ModelSpec(preset: preset ?? base.preset, width: width, fcWidth: fcWidth ?? base.fcWidth,
                         inputSize: inputSize ?? base.inputSize, classes: Emotion.allCases.count, dropout: dropout)
    }

    func validate() throws {
        if let p = spec.problem { throw ValidationError(p) }
    }
}
