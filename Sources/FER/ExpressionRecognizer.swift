import Dispatch
import FERData
import FEREngine
import FERIO
import FERModels
import FERVision
import Foundation

/// Recognises the expression on every face in a photo: the one type an app needs.
///
///     let recognizer = try ExpressionRecognizer()                 // the bundled default model
///     for face in try recognizer.faces(inPhotoAt: "group.jpg") {
///         print(face.emotion, face.confidence, face.box)
///     }
///
/// It loads a bundled or file model in the precision the policy picks (`PrecisionChoice`), builds
/// the face detector, and labels faces in photos on disk, in pixels (gray or RGB, any size), or in
/// a ready face crop. One recognizer may be shared by any number of tasks and threads: its work runs
/// one call at a time on its own queue (the engine keeps per-shape buffers), and the `async`
/// variants wait without blocking a thread.
public final class ExpressionRecognizer: @unchecked Sendable {  // the analyzer is touched only on `queue`
    /// Every setting, with the defaults every command of `fer` uses.
    public struct Configuration: Sendable {
        /// A model file (.safetensors) or a bundled name (`BundledModels.names`); nil: the default model.
        public var model: String?
        public var precision = PrecisionChoice.auto
        public var detector = DetectorSettings()
        /// MTCNN's arithmetic (the cascades run in OpenCV).
        public var detectorPrecision = PrecisionChoice.auto
        /// How found faces are read: `margin` (instead of the calibrated FER2013 framing), `tta`,
        /// `align` (level the eyes: MTCNN's landmarks), `borderRetry` (photos with no face found are
        /// searched again inside a border), `maxPixels` (larger photos are refused before decoding).
        public var reading = FaceReading()
        /// oneDNN threads (process-wide).
        public var threads = 2

        public init(model: String? = nil) { self.model = model }

        /// Why these settings cannot run, naming the setting by its `fer` option; nil when they can.
        public var problem: String? {
            reading.problem(detector: detector.kind) ?? Self.threadsProblem(threads) ?? Self.detectorProblem(detector, precision: detectorPrecision)
        }

        /// The rule for `threads` alone (commands that run the engine without a detector use it too).
        package static func threadsProblem(_ threads: Int) -> String? {
            (1...256).contains(threads) ? nil : "--threads must be between 1 and 256, got \(threads)"
        }

        /// The rules for a detector and MTCNN's arithmetic (commands that detect without classifying use them too).
        package static func detectorProblem(_ detector: DetectorSettings, precision: PrecisionChoice) -> String? {
            if !detector.kind.hasPrecision, precision != .auto {
                return "--detector-precision sets MTCNN's arithmetic; --detector \(detector.kind.rawValue) runs in OpenCV"
            }
            return detector.problem
        }
    }

    /// A model loaded in the arithmetic chosen for it (for `fer`'s commands that need the network).
    package struct LoadedModel {
        package var classifier: Classifier
        package var card: ModelCard
        /// The file's tensors (int8 ranges, training state).
        package var file: SafeTensors
        package var path: String
        package var precision: Precision
        /// How `auto` chose (nil when a precision was named).
        package var decision: AutoPrecision.Decision?
    }

    public let configuration: Configuration
    /// The model file that runs.
    public let modelPath: String
    /// The order of every result's probabilities.
    public let classNames: [String]
    public let card: ModelCard
    /// The classifier's and the detector's arithmetic, and how `auto` chose each (when it did).
    public let precision: Precision
    public let detectorSettings: DetectorSettings
    /// The detector and the arithmetic it runs in, for people: "mtcnn int8", "haar".
    public var detectorSummary: String { analyzer.detector.summary }
    /// How `auto` chose each setting it measured now or found cached (for `fer`'s notes).
    package let decisions: [(setting: String, decision: AutoPrecision.Decision)]
    /// For `fer` and its server, which run it on one thread of their own; apps use the methods below.
    package let analyzer: FaceAnalyzer
    private let queue = DispatchQueue(label: "fer.expression-recognizer")

    /// The bundled default model (or `model`: a file or a bundled name) with every default.
    public convenience init(model: String? = nil) throws {
        try self.init(Configuration(model: model))
    }

    public init(_ configuration: Configuration) throws {
        if let p = configuration.problem { throw RecognizerError.badConfiguration(p) }
        DNNL.setThreads(configuration.threads)
        let model = try Self.loadModel(configuration.model, precision: configuration.precision)
        let detector = try Self.detectorSettings(configuration.detector, precision: configuration.detectorPrecision)
        let analyzer = FaceAnalyzer(detector: try makeFaceDetector(detector.settings, mtcnnWeights: try BundledModels.mtcnnWeights),
                                    classifier: model.classifier, reading: configuration.reading)
        self.configuration = configuration
        self.analyzer = analyzer
        modelPath = model.path
        classNames = model.classifier.classNames
        card = model.card
        precision = model.precision
        detectorSettings = detector.settings
        decisions = [("--precision", model.decision), ("--detector-precision", detector.decision)].compactMap { s, d in d.map { (s, $0) } }
    }

    /// Loads a model (file or bundled name; nil: the default) ready in `precision`: the one place
    /// a model argument becomes a network, for the recognizer and every command.
    package static func loadModel(_ argument: String?, precision: PrecisionChoice) throws -> LoadedModel {
        let path = try BundledModels.resolve(argument)
        let (classifier, card, file) = try Checkpoint.load(path)
        let ranges = file[Classifier.int8RangesTensor]?.values
        let (chosen, decision) = try classifier.resolvePrecision(precision, ranges: ranges)
        if chosen != .fp32 { try classifier.compile(chosen, ranges: ranges) }  // fp32 runs the trained layers as they are
        return LoadedModel(classifier: classifier, card: card, file: file, path: path, precision: chosen, decision: decision)
    }

    /// `settings` with MTCNN's arithmetic resolved for this CPU (the cascades as they are).
    package static func detectorSettings(_ settings: DetectorSettings, precision: PrecisionChoice) throws -> (settings: DetectorSettings, decision: AutoPrecision.Decision?) {
        guard settings.kind.hasPrecision else { return (settings, nil) }
        var s = settings
        let decision: AutoPrecision.Decision?
        (s.precision, decision) = try MTCNNNetworks.resolvePrecision(precision, weights: try BundledModels.mtcnnWeights, settings: s)
        return (s, decision)
    }

    // MARK: labelling faces

    /// The faces in the photo at `path` (JPEG, PNG, BMP, WebP; turned by its EXIF orientation), left
    /// to right, boxes in the photo's pixels. Throws for a missing, unreadable, damaged or too large file.
    public func faces(inPhotoAt path: String) throws -> [FaceResult] {
        try queue.sync { try Self.photoFaces(analyzer, path) }
    }

    /// The faces in an `Image`: gray (1 channel) or colour (3, in OpenCV's BGR order, as `Image.read`
    /// gives), any size.
    public func faces(in image: Image) throws -> [FaceResult] {
        try Self.check(image)
        return queue.sync { analyzer.analyze(image) }
    }

    /// The faces in raw pixels, row by row: `channels` 1 (gray) or 3 (RGB).
    public func faces(inPixels pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [FaceResult] {
        try faces(in: try Self.image(pixels, width: width, height: height, channels: channels))
    }

    /// The expression of a ready face crop (48x48 gray as in FER2013, or any crop of one face, which
    /// is scaled to the network's input). The box is the whole image.
    public func expression(ofFace face: Image) throws -> FaceResult {
        try Self.check(face)
        return queue.sync { analyzer.analyzeAsCrop(face)[0] }
    }

    // MARK: the same, awaited

    public func faces(inPhotoAt path: String) async throws -> [FaceResult] {
        try await onQueue { try Self.photoFaces($0, path) }
    }

    public func faces(in image: Image) async throws -> [FaceResult] {
        try Self.check(image)
        return try await onQueue { $0.analyze(image) }
    }

    public func faces(inPixels pixels: [UInt8], width: Int, height: Int, channels: Int) async throws -> [FaceResult] {
        try await faces(in: try Self.image(pixels, width: width, height: height, channels: channels))
    }

    public func expression(ofFace face: Image) async throws -> FaceResult {
        try Self.check(face)
        return try await onQueue { $0.analyzeAsCrop(face)[0] }
    }

    static func photoFaces(_ analyzer: FaceAnalyzer, _ path: String) throws -> [FaceResult] {
        analyzer.analyze(try analyzer.readPhoto(path))
    }

    /// Runs `work` on the recognizer's queue and resumes the awaiting task with its result: no
    /// thread is held while the call waits its turn.
    private func onQueue<T: Sendable>(_ work: @escaping @Sendable (FaceAnalyzer) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            queue.async { c.resume(with: Result { try work(self.analyzer) }) }
        }
    }

    /// Raw pixels as an `Image` (RGB turned to OpenCV's BGR), after checking their shape.
    static func image(_ pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> Image {
        try checkShape(width: width, height: height, channels: channels, count: pixels.count)
        return Image(width: width, height: height, channels: channels, pixels: pixels).bgrFromRGB()
    }

    static func check(_ image: Image) throws {
        try checkShape(width: image.width, height: image.height, channels: image.channels, count: image.pixels.count)
    }

    static func checkShape(width: Int, height: Int, channels: Int, count: Int) throws {
        guard channels == 1 || channels == 3 else { throw RecognizerError.badPixels("channels must be 1 (gray) or 3 (RGB), got \(channels)") }
        guard width > 0, height > 0, width <= 1 << 20, height <= 1 << 20 else {
            throw RecognizerError.badPixels("the image must be at least 1x1 and at most 1048576 pixels a side, got \(width)x\(height)")
        }
        guard count == width * height * channels else {
            throw RecognizerError.badPixels("\(width)x\(height)x\(channels) needs \(width * height * channels) bytes, got \(count)")
        }
    }
}

extension Image {
    /// The same pixels with the first and third channels swapped (RGB <-> BGR); gray as it is.
    func bgrFromRGB() -> Image {
        guard channels == 3 else { return self }
        var p = pixels
        for i in stride(from: 0, to: p.count, by: 3) { p.swapAt(i, i + 2) }
        return Image(width: width, height: height, channels: 3, pixels: p)
    }
}
