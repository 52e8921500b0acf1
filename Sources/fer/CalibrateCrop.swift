import ArgumentParser
import FER
import FERData
import FERIO
import FERVision
import Foundation

struct CalibrateCrop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crop",
        abstract: "Measure where FER2013's face framing sits relative to a detector's box.",
        discussion: """
        Pastes upscaled FER2013 Training faces into larger noisy images, detects them, and prints the
        median framing (CropFraming: left, top, side in box units). Then compares, on PublicTest faces
        pasted the same way, how far the old rule (box plus 10% per side) and the measured framing land
        from the true frame, in pixels of the 48x48 face, and the model's accuracy through the whole
        pipeline with each crop on those pasted faces. Last, the same with the eyes levelled (--align,
        MTCNN only) on those faces upright and turned by up to --max-tilt degrees.
        """)

    @Option(help: "FER2013 CSV (plain or .gz).") var data: String
    @OptionGroup(title: "The face detector") var detection: DetectorOptions
    @Option(help: "Faces to measure on (and to check on).") var faces: Int = 2000
    @Option var seed: UInt64 = 1
    @Option(help: "For the --align check: turn the pasted faces by up to this many degrees.") var maxTilt: Double = 20
    @OptionGroup var model: ModelOptions
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard faces >= 1 else { throw ValidationError("--faces must be at least 1, got \(faces)") }
        guard maxTilt >= 0, maxTilt <= 45 else { throw ValidationError("--max-tilt must be between 0 and 45 degrees, got \(maxTilt)") }
    }

    struct Output: Codable {
        var detector: String
        var measurement: CropCalibration.Measurement
        var publicTestMargin10: CropCalibration.FramingError
        var publicTestCalibrated: CropCalibration.FramingError
        var accuracyMargin10: Double
        var accuracyCalibrated: Double
        /// MTCNN only: calibrated framing, eyes levelled; then both on faces turned by up to maxTilt.
        var accuracyAligned: Double?
        var accuracyTiltedCalibrated: Double?
        var accuracyTiltedAligned: Double?
    }

    func run() throws {
        let splits = try DatasetLoader.load(data)
        guard let train = splits[.training], let check = splits[.publicTest] else {
            throw ValidationError("\(data) needs Training and PublicTest faces")
        }
        let det = try detection.make()
        let bar = ProgressBar(total: faces, label: "measure")
        bar.enabled = !json
        let m = try CropCalibration.measure(train, detector: det, count: faces, seed: seed) { bar.update($0) }
        bar.finish()
        let f = m.framing
        let old = CropCalibration.error(check, detector: det, count: faces, seed: seed ^ 0xC4EC) { b in
            let e = b.expanded(by: 0.1, within: .max, .max)
            return (Double(e.x), Double(e.y), Double(e.width), Double(e.height))
        }
        let new = CropCalibration.error(check, detector: det, count: faces, seed: seed ^ 0xC4EC) { b in
            let fr = f.frame(b)
            return (fr.x, fr.y, fr.side, fr.side)
        }
        // The classifier through the whole pipeline on the same pasted PublicTest faces, each crop rule.
        let loaded = try model.loadFile()
        let (classifier, classifierPath) = (loaded.classifier, loaded.path)
        let withMargin = FaceAnalyzer(detector: det, classifier: classifier, reading: FaceReading(margin: 0.1))
        let calibrated = FaceAnalyzer(detector: det, classifier: classifier)
        calibrated.framing = f
        let levelled = FaceAnalyzer(detector: det, classifier: classifier)
        levelled.framing = f
        levelled.reading.align = true
        let upright = CropCalibration.pipelineAccuracy(check, analyzers: [withMargin, calibrated] + (detection.detector.findsLandmarks ? [levelled] : []),
                                                       count: faces, seed: seed ^ 0xC4EC).accuracy
        let (accOld, accNew) = (upright[0], upright[1])
        var aligned: (upright: Double, tilted: Double, tiltedAligned: Double)?
        if detection.detector.findsLandmarks {
            let tilted = CropCalibration.pipelineAccuracy(check, analyzers: [calibrated, levelled], count: faces, seed: seed ^ 0xC4EC, maxTilt: maxTilt).accuracy
            aligned = (upright[2], tilted[0], tilted[1])
        }
        if json {
            try printJSON(Output(detector: det.name, measurement: m, publicTestMargin10: old, publicTestCalibrated: new,
                                 accuracyMargin10: accOld, accuracyCalibrated: accNew, accuracyAligned: aligned?.upright,
                                 accuracyTiltedCalibrated: aligned?.tilted, accuracyTiltedAligned: aligned?.tiltedAligned))
        } else {
            print("\(det.name): found \(m.found) of \(m.tried) pasted Training faces")
            print(String(format: "framing: left %.3f, top %.3f, side %.3f (box units)", f.left, f.top, f.side))
            print(String(format: "PublicTest (%d faces, %d found), mean / median edge error in 48x48 pixels:", new.faces, new.found))
            print(String(format: "  box + 10%% per side  %.2f / %.2f", old.meanEdgeError, old.medianEdgeError))
            print(String(format: "  calibrated framing  %.2f / %.2f", new.meanEdgeError, new.medianEdgeError))
            print(String(format: "accuracy of %@ on these pasted faces (not found = wrong): box + 10%% %.2f%%, calibrated %.2f%%",
                         classifierPath, 100 * accOld, 100 * accNew))
            if let a = aligned {
                print(String(format: "eyes levelled (--align): upright %.2f%%; turned by up to %.0f degrees: calibrated %.2f%%, levelled %.2f%%",
                             100 * a.upright, maxTilt, 100 * a.tilted, 100 * a.tiltedAligned))
            }
        }
    }
}
