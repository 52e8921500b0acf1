import ArgumentParser
import FER
import FERData
import FEREngine
import FEREvaluation
import FERIO
import FERVision
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy, per-class precision/recall/F1 and the confusion matrix of a model.",
        discussion: """
        --data scores face crops: a FER2013 split (CSV or image folders). --photos scores the whole photo
        pipeline (detect, frame, classify) on a folder with one sub-folder per emotion (angry, disgust,
        fear, happy, neutral, sad, surprise); a photo with no face, or several, counts as wrong and is listed.
        --pool adds up the reports of earlier `fer evaluate --json` runs (the folds of a cross-validation,
        say) and reports the sum, each recall with its 95% interval.
        """)

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root: score face crops.") var data: String?
    @Option(help: "Folder of photos in emotion sub-folders: score the whole photo pipeline.") var photos: String?
    @Option(help: "With --data: Training, PublicTest or PrivateTest.") var split: Split = .privateTest
    @Option(help: "With --data: fer2013new.csv, to score against FER+ majority labels.") var ferplus: String?
    @Flag(help: "With --data: leave out faces whose image is also in Training (FER2013 has such duplicates).") var withoutTrainingDuplicates = false
    @OptionGroup var face: FaceOptions
    @Option(help: "Write the confusion matrix image here (.png).") var confusion: String?
    @Option(help: "With --data: write the reliability diagram (confidence against accuracy) here (.png).") var reliability: String?
    @Option(parsing: .upToNextOption, help: "`fer evaluate --json` reports to add up (no model runs).") var pool: [String] = []
    @Option(help: "Also the mean recall over these classes, comma-separated (such as angry,sad,surprise).") var meanOver: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard [data != nil, photos != nil, !pool.isEmpty].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --data (face crops), --photos (photo folder) or --pool (reports)")
        }
        if !pool.isEmpty, ferplus != nil || confusion != nil || reliability != nil || withoutTrainingDuplicates {
            throw ValidationError("--pool adds up finished reports: --ferplus, --confusion, --reliability and --without-training-duplicates do not apply")
        }
        if let names = meanOver?.split(separator: ",").map({ String($0).lowercased() }) {
            let known = Set(Emotion.names.map { $0.lowercased() })
            if let bad = names.first(where: { !known.contains($0) }) {
                throw ValidationError("--mean-over: \(bad) is not a class (\(Emotion.names.joined(separator: ", ")))")
            }
        }
        if photos != nil, ferplus != nil { throw ValidationError("--ferplus applies to --data, not --photos") }
        if photos != nil, reliability != nil { throw ValidationError("--reliability applies to --data, not --photos") }
        if photos != nil, withoutTrainingDuplicates { throw ValidationError("--without-training-duplicates applies to --data, not --photos") }
        if withoutTrainingDuplicates, split == .training { throw ValidationError("--without-training-duplicates leaves out Training images: evaluate PublicTest or PrivateTest") }
        let d = face.detection
        if data != nil, d.detector != DetectorSettings().kind || d.scaleFactor != nil || d.minNeighbors != nil || face.margin != nil || face.align
            || d.minSize != DetectorSettings().minFace || d.detectSide != DetectorSettings().maxSide
            || face.borderRetry != FaceReading().borderRetry || d.detectorPrecision != .auto {
            throw ValidationError("the detector and crop options apply to --photos; --data holds faces already cropped")
        }
    }

    struct Output: Codable {
        var model: String; var data: String; var split: String; var tta: String
        var report: ClassificationReport; var seconds: Double
        var accuracy: Double; var precision: String
        var trainingDuplicatesLeftOut: Int?
        /// Expected calibration error (15 bins) and mean negative log-likelihood of the labels.
        var calibrationError: Double; var negativeLogLikelihood: Double
        var temperature: Float
    }

    func run() throws {
        if !pool.isEmpty { return try poolReports() }
        if let photos { return try evaluatePhotos(photos) }
        guard let data else { return }
        face.threads.apply()
        let model = try face.model.loadFile()
        let (path, classifier) = (model.path, model.classifier)
        var splits = try DatasetLoader.load(data)
        if let fp = ferplus {
            let plus = try FERPlus.load(fp)
            for (k, v) in splits { splits[k] = try plus.relabel(v, mode: .majority) }
        }
        guard var set = splits[split], set.count > 0 else { throw DataError.mismatch(data, reason: "no \(split.rawValue) faces") }
        var leftOut: Int?
        if withoutTrainingDuplicates {
            let kept = Self.withoutDuplicates(of: splits[.training], in: set)
            leftOut = set.count - kept.count
            set = set.subset(kept)
            guard set.count > 0 else { throw DataError.mismatch(data, reason: "every \(split.rawValue) face is also in Training") }
        }
        let bar = ProgressBar(total: set.count, label: "evaluate \(split.rawValue)")
        bar.enabled = !json
        let start = Date()
        let probs = classifier.classify(set, tta: face.tta, batchSize: 256) { bar.update($0) }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        let report = ClassificationReport(labels: set.labels, predictions: probs.map(argmax), classNames: classifier.classNames)
        let bins = TemperatureCalibration.reliability(probabilities: probs, labels: set.labels)
        let ece = TemperatureCalibration.expectedCalibrationError(bins)
        let nll = TemperatureCalibration.negativeLogLikelihood(probabilities: probs, labels: set.labels)
        let title = "\((path as NSString).lastPathComponent) on \(split.rawValue) (TTA \(face.tta.rawValue))"
        if let c = confusion { try Plots.confusionMatrix(report, title: title).write(c) }
        if let r = reliability { try Plots.reliabilityDiagram(bins, title: title).write(r) }
        if json {
            try printJSON(Output(model: path, data: data, split: split.rawValue, tta: face.tta.rawValue, report: report, seconds: seconds, accuracy: report.accuracy,
                                  precision: classifier.precisionName, trainingDuplicatesLeftOut: leftOut,
                                  calibrationError: ece, negativeLogLikelihood: nll, temperature: classifier.temperature))
        } else {
            let dropped = leftOut.map { ", \($0) with an identical Training image left out" } ?? ""
            print("model \(path)\nsplit \(split.rawValue) of \(data), \(set.count) faces\(dropped), TTA \(face.tta.rawValue), \(classifier.precisionName), \(String(format: "%.1f", seconds)) s\n")
            print(report.table)
            print(String(format: "\nconfidence: expected calibration error %.2f%%, negative log-likelihood %.4f (temperature %.3f)", 100 * ece, nll, classifier.temperature))
            if let c = confusion { print("\nconfusion matrix image: \(c)") }
            if let r = reliability { print("reliability diagram: \(r)") }
        }
    }

    /// What `--pool` prints as JSON: the reports read, their sum, and the mean recall asked for.
    struct Pooled: Codable {
        var reports: [String]
        var report: ClassificationReport
        var meanOver: [String]?
        /// [mean, low, high] over `meanOver`'s classes with examples.
        var meanRecallOver: [Double]?
    }

    func poolReports() throws {
        struct HasReport: Decodable { var report: ClassificationReport }
        let reports = try pool.map { path in
            try DataError.checkReadable(path)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            do { return try JSONDecoder().decode(HasReport.self, from: bytes).report } catch {
                throw DataError.mismatch(path, reason: "not a `fer evaluate --json` report (\(error))")
            }
        }
        let sum = try ClassificationReport.pooled(reports, names: pool)
        let names = meanOver?.split(separator: ",").map(String.init)
        let mean = names.flatMap { sum.meanRecall(over: $0) }
        if json {
            return try printJSON(Pooled(reports: pool, report: sum, meanOver: names, meanRecallOver: mean.map { [$0.value] + $0.interval }))
        }
        print("\(pool.count) reports pooled, \(sum.count) examples\n")
        print(sum.table)
        if let names, let mean {
            print(String(format: "\nmean recall over %@: %.3f (95%% CI %.3f-%.3f)", names.joined(separator: ", "), mean.value, mean.interval[0], mean.interval[1]))
        }
    }

    /// Indices of the faces of `set` whose pixels are not those of any face of `training`.
    static func withoutDuplicates(of training: FaceDataset?, in set: FaceDataset) -> [Int] {
        guard let training, training.side == set.side else { return Array(0..<set.count) }
        let seen = Set((0..<training.count).map { Array(training.image($0)) })
        return (0..<set.count).filter { !seen.contains(Array(set.image($0))) }
    }

    func evaluatePhotos(_ root: String) throws {
        let analyzer = try face.analyzer()
        let bar = ProgressBar(total: 1, label: "photos")
        bar.enabled = !json
        let start = Date()
        let result = try PhotoSetEvaluation.run(root, analyzer: analyzer) { done, total in bar.total = total; bar.update(done) }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        if let c = confusion {
            try Plots.confusionMatrix(result.report, title: "photos in \((root as NSString).lastPathComponent) (\(analyzer.detector.name))").write(c)
        }
        if json {
            try printJSON(result)
            return
        }
        let framing = analyzer.reading.margin.map { "box + \($0) per side" } ?? "calibrated framing"
        let left = result.unreadable.isEmpty ? "" : " (\(result.unreadable.count) unreadable, left out)"
        print("model \(try face.model.file.resolved())\nphotos in \(root): \(result.photos.count)\(left), detector \(analyzer.detector.summary), \(framing), TTA \(face.tta.rawValue), \(analyzer.classifier.precisionName), \(String(format: "%.1f", seconds)) s\n")
        print(result.report.table)
        let unreadable = result.unreadable
        if !unreadable.isEmpty {
            print("\nunreadable, left out of the figures (\(unreadable.count)):")
            for p in unreadable { print("  \(p.file): \(p.problem ?? "?")") }
        }
        let wrong = result.wrong
        if !wrong.isEmpty {
            print("\nwrong or unanswered (\(wrong.count)):")
            for p in wrong { print("  \(p.file): \(p.label) -> \(p.predicted ?? p.problem ?? "?")") }
        }
        if let c = confusion { print("\nconfusion matrix image: \(c)") }
    }
}
