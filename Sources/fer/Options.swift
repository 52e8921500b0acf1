import ArgumentParser
import FERData
import FERIO
import FEREngine
import FERModels
import FERVision
import Foundation

extension DetectorKind: ExpressibleByArgument {}

/// `--threads`, declared once for every command that runs the engine.
struct ThreadOptions: ParsableArguments {
    @Option(help: "oneDNN threads.") var threads: Int = 2

    func validate() throws {
        guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be between 1 and 256, got \(threads)") }
    }

    func apply() { DNNL.setThreads(threads) }
}

/// `--precision` for inference: fp32, bf16, int8, or auto (the fastest this CPU and model allow, measured).
enum InferencePrecisionChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, fp32, bf16, int8

    /// The precision asked for, or an error saying why it cannot run here; nil for auto, which
    /// `AutoPrecision` measures. `what` names the option in the error.
    func explicit(hasInt8Ranges: Bool, what: String = "--precision") throws -> InferencePrecision? {
        switch self {
        case .fp32: return .fp32
        case .bf16:
            guard CPUFeatures.bf16 else { throw ValidationError("\(what) bf16 needs a CPU with AVX-512 BF16 or AMX; this one (\(CPU.description)) has neither: use fp32 or int8") }
            return .bf16
        case .int8:
            guard hasInt8Ranges else { throw ValidationError("\(what) int8: \(InferenceError.notCalibrated)") }
            return .int8
        case .auto: return nil
        }
    }
}

/// The arithmetic `auto` picked; said on standard error when it was measured now (the first run
/// of this work on this CPU), not when it came from the cache.
func noted<P>(_ choice: (P, AutoPrecision.Decision), _ what: String) -> P {
    if !choice.1.cached, choice.1.seconds.count > 1 {
        FileHandle.standardError.write(Data("\(what) auto: \(choice.1.reason); kept in \(AutoPrecision.defaultCacheFile)\n".utf8))
    }
    return choice.0
}

/// `--model`: a trained model to run, by file or bundled name, and the arithmetic to run it in.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model file (.safetensors), or a bundled model: default, fast (see `fer models`).") var model: String?
    @Option(help: "Inference arithmetic: auto (the fastest measured on this CPU among those it runs natively: fp32, int8 with VNNI and int8 ranges, bf16 with AVX-512 BF16), fp32, bf16, int8.")
    var precision: InferencePrecisionChoice = .auto

    func load() throws -> Classifier { try loadFile().classifier }

    /// The classifier, ready in the chosen precision, with the card and tensors of its file.
    func loadFile() throws -> (classifier: Classifier, card: ModelCard, file: SafeTensors) {
        let (classifier, card, st) = try Checkpoint.load(try Bundled.resolve(model))
        let ranges = st[Classifier.int8RangesTensor]?.values
        let p = try precision.explicit(hasInt8Ranges: ranges != nil) ?? noted(try classifier.autoPrecision(ranges: ranges), "--precision")
        if p != .fp32 { try classifier.compile(p, ranges: ranges) }  // fp32 runs the trained layers as they are
        return (classifier, card, st)
    }
    var path: String { (try? Bundled.resolve(model)) ?? model ?? "default" }
}

/// The face detector's options. The cascade-only ones are an error with MTCNN rather than ignored.
struct DetectorOptions: ParsableArguments {
    @Option(help: "Face detector: mtcnn, or the OpenCV cascades haar, haar-alt2, lbp.") var detector: DetectorKind = .mtcnn
    @Option(help: "Smallest face side, pixels (the classifier's input is 48x48).") var minSize: Int = DetectorSettings().minFace
    @Option(help: "Detect on a copy whose longer side is at most this (0: full size).") var detectSide: Int = DetectorSettings().maxSide
    @Option(help: "Cascades only: pyramid step, above 1 (default 1.1).") var scaleFactor: Double?
    @Option(help: "Cascades only: overlapping hits needed per face, 1 or more (default 5).") var minNeighbors: Int?
    @Option(help: "MTCNN's arithmetic: auto (the fastest measured on this CPU, as --precision), fp32, bf16, int8.")
    var detectorPrecision: InferencePrecisionChoice = .auto

    var settings: DetectorSettings {
        var s = DetectorSettings(kind: detector)
        s.minFace = minSize
        s.maxSide = detectSide
        if let f = scaleFactor { s.scaleFactor = f }
        if let n = minNeighbors { s.minNeighbors = n }
        return s
    }

    func validate() throws {
        if !detector.isCascade, scaleFactor != nil || minNeighbors != nil {
            throw ValidationError("--scale-factor and --min-neighbors tune the cascades (haar, haar-alt2, lbp), not --detector mtcnn")
        }
        if detector.isCascade, detectorPrecision != .auto {
            throw ValidationError("--detector-precision sets MTCNN's arithmetic; the \(detector.rawValue) cascade runs in OpenCV")
        }
        if let p = settings.problem { throw ValidationError(p) }
    }

    /// `settings` with MTCNN's arithmetic resolved for this CPU.
    func resolvedSettings() throws -> DetectorSettings {
        var s = settings
        if detector == .mtcnn {
            s.precision = try detectorPrecision.explicit(hasInt8Ranges: MTCNNNetworks.hasInt8Ranges(Bundled.mtcnnWeights), what: "--detector-precision")
                ?? noted(try MTCNNNetworks.autoPrecision(weights: Bundled.mtcnnWeights, settings: s), "--detector-precision")
        }
        return s
    }

    func make() throws -> FaceDetector { try makeFaceDetector(try resolvedSettings(), mtcnnWeights: Bundled.mtcnnWeights) }
}

/// Options shared by the commands that find and label faces.
struct FaceOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions
    @OptionGroup var detection: DetectorOptions
    @Option(help: "Crop the detected box plus this fraction of its size per side, instead of the calibrated FER2013 framing.") var margin: Double?
    @Option(help: "Test-time augmentation: none, flip, tencrop.") var tta: TestTimeAugmentation = .none
    @Flag(help: "Level the eyes (MTCNN's landmarks) before classifying.") var align = false
    @Option(help: "Photos with no face found are searched again inside a border of this fraction of their longer side (0: off).")
    var borderRetry: Double = FaceAnalyzer.defaultBorderRetry
    @Option(help: "Largest image, pixels, read from its header before decoding; larger ones are refused.") var maxPixels = ImageHeader.defaultMaxPixels
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if !(1...1_000_000_000).contains(maxPixels) { throw ValidationError("--max-pixels must be between 1 and 1000000000, got \(maxPixels)") }
        if let m = margin, !(m >= 0 && m <= 1) { throw ValidationError("--margin must be between 0 and 1, got \(m)") }
        if !(borderRetry >= 0 && borderRetry <= 1) { throw ValidationError("--border-retry must be between 0 (off) and 1, got \(borderRetry)") }
        if align, margin != nil { throw ValidationError("--align turns the calibrated framing; it does not apply with --margin") }
        if align, detection.detector != .mtcnn { throw ValidationError("--align needs the eye landmarks of --detector mtcnn") }
    }

    func analyzer() throws -> FaceAnalyzer {
        threads.apply()
        let a = FaceAnalyzer(detector: try detection.make(), classifier: try model.load(), margin: margin)
        a.tta = tta
        a.align = align
        a.borderRetry = borderRetry
        a.maxPixels = maxPixels
        return a
    }
}

extension Preset: ExpressibleByArgument {}

/// The architecture of a network to build: a preset and its sizes (train, bench, models).
struct ArchitectureOptions: ParsableArguments {
    @Option(help: "Preset: mlp, cnn, vgg, resnet (see `fer models`).") var preset: Preset = .cnn
    @Option(help: "First-stage width: channels, 1-256 (hidden units for mlp, 1-8192).") var width: Int?
    @Option(help: "Hidden units of the VGG head (0: 64 x width).") var fcWidth: Int = 0
    @Option(help: "Input side: 48, or a random crop of the 48x48 face such as 44 or 40.") var inputSize: Int = 48
    @Option(help: "Dropout probability before the classifier, in [0, 1).") var dropout: Float?

    var spec: ModelSpec {
        ModelSpec(preset: preset, width: width, fcWidth: fcWidth, inputSize: inputSize, classes: Emotion.allCases.count, dropout: dropout)
    }

    func validate() throws {
        if let p = spec.problem { throw ValidationError(p) }
    }
}
