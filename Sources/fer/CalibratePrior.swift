import ArgumentParser
import FER
import FERData
import FEREngine
import FEREvaluation
import FERIO
import FERModels
import FERVision
import Foundation

struct CalibratePrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prior",
        abstract: "Fit per-class offsets on the validation sets, and write the model with them in its last bias.",
        discussion: """
        Fits on selection sets only: FER2013's PublicTest (--data; with --ferplus against FER+'s
        majority labels too, as a second set) and the val/ faces of labelled photo
        folders (--photos, through the photo pipeline, face cache shared with `fer train`); never
        PrivateTest. The offsets maximise the mean over the sets of their accuracy (--objective accuracy)
        or of their mean recall over the classes with at least --min-class-faces faces (mean-recall).
        Prints each set's figures before and after, and the objective with offsets fitted on the other
        half of every set (two folds), which the fitted figure flatters.
        Example: fer calibrate prior --data fer2013.csv.gz --photos web-photos --model runs/x/best.safetensors --out runs/x/prior.safetensors
        """)

    enum Objective: String, CaseIterable, ExpressibleByArgument { case accuracy, meanRecall = "mean-recall" }

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root: fit on PublicTest.") var data: String?
    @Option(help: "With --data: fer2013new.csv, to fit on PublicTest against FER+ majority labels too (one more set).") var ferplus: String?
    @Option(help: ArgumentHelp("A folder of labelled photos (train/ and val/ inside, or emotion sub-folders): fit on its val/ faces; repeatable.", valueName: "dir"))
    var photos: [String] = []
    @Option(help: "What the offsets maximise: accuracy or mean-recall (each set's, averaged over the sets).") var objective: Objective = .accuracy
    @Option(help: "mean-recall: classes with fewer faces than this in a set are left out of its mean.") var minClassFaces = 10
    @OptionGroup var model: ModelFileOptions
    @Option(help: "Where to write the calibrated model (.safetensors).") var out: String
    @OptionGroup(title: "Photo folders: the face detector") var detection: DetectorOptions
    @OptionGroup var faceCache: FaceCacheOptions
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard data != nil || !photos.isEmpty else { throw ValidationError("give the sets to fit on: --data (PublicTest), --photos DIR, or both") }
        if ferplus != nil, data == nil { throw ValidationError("--ferplus relabels --data's PublicTest: give --data too") }
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        try OutputNames.check(out, against: [try model.resolved()], option: "--out")
        guard minClassFaces >= 1 else { throw ValidationError("--min-class-faces must be at least 1 (got \(minClassFaces))") }
    }

    func run() throws {
        threads.apply()
        let loaded = try model.load()
        let (classifier, card, st) = (loaded.classifier, loaded.card, loaded.file)
        guard let last = classifier.network.layers.last(where: { $0 is Dense }) as? Dense, last.outFeatures == classifier.spec.classes else {
            throw ValidationError("the model's last layer is not a dense layer over the classes")
        }
        // Each set with its name for people and its prefix in the card's metrics.
        var sets: [(name: String, key: String, faces: FaceDataset)] = []
        if let data {
            guard let set = try DatasetLoader.load(data)[.publicTest], set.count >= 2 else {
                throw DataError.mismatch(data, reason: "the prior is fitted on PublicTest and checked on two halves of it: it needs at least 2 PublicTest faces")
            }
            sets.append(("PublicTest", "publictest", set))
            if let ferplus { sets.append(("PublicTest (FER+ majority)", "publictest_ferplus", try FERPlus.load(ferplus).relabel(set, mode: .majority))) }
        }
        if !photos.isEmpty {
            let analyzer = FaceAnalyzer(detector: try detection.make(), classifier: classifier)
            for root in photos {
                let folder = try PhotoFaces.splitFolders(root).validation ?? root
                let name = TrainConfig.datasetName(root) + "/val"
                let set = try PhotoFolderFaces.load(folder, label: name, analyzer: analyzer, cacheFolder: faceCache.folder, verbose: true, progressBar: true)
                guard set.faces.count >= 2 else { throw DataError.mismatch(folder, reason: "fewer than 2 faces found in its photos: nothing to fit on") }
                let key = name.lowercased().split { !($0.isLetter || $0.isNumber) }.joined(separator: "_")
                sets.append((name, key, set.faces))
            }
        }
        let scored = sets.map { PriorCalibration.Scored(logProbabilities: classifier.classify($0.faces, batchSize: 256).map { $0.map { log(max($0, 1e-12)) } },
                                                        labels: $0.faces.labels) }
        let goal: PriorCalibration.Objective = objective == .accuracy ? .accuracy : .meanRecall(minimumFaces: minClassFaces)
        let bias = PriorCalibration.fit(scored, objective: goal)
        let zero = [Float](repeating: 0, count: bias.count)
        // The fitted sets' own figures flatter the offsets: fit on one half of every set, score the other.
        let halves = (0..<2).map { fold in scored.map { $0.half(fold) } }
        let heldOut = (0..<2).map { fold in
            PriorCalibration.score(halves[1 - fold], PriorCalibration.fit(halves[fold], objective: goal), goal) / 2
        }.reduce(0, +)
        // The offsets were fitted on log-probabilities, logits / T: in the bias they are worth T times as much.
        for (c, b) in bias.enumerated() { last.bias.values[c] += b * classifier.temperature }
        last.bias.changed()
        var calibrated = card
        for (name, b) in zip(classifier.classNames, bias) { calibrated.metrics["prior_offset_\(name)"] = Double(b) }
        print("offsets: " + zip(classifier.classNames, bias).map { "\($0) \(String(format: "%+.2f", $1))" }.joined(separator: ", "))
        for (set, s) in zip(sets, scored) {
            let accuracy = [zero, bias].map { Double(PriorCalibration.correct(s.logProbabilities, s.labels, $0)) / Double(set.faces.count) }
            let recall = [zero, bias].map { PriorCalibration.meanRecall(s, $0, minimumFaces: minClassFaces) }
            calibrated.metrics["\(set.key)_accuracy_before_prior"] = accuracy[0]
            calibrated.metrics["\(set.key)_accuracy_after_prior"] = accuracy[1]
            calibrated.metrics["\(set.key)_mean_recall_before_prior"] = recall[0]
            calibrated.metrics["\(set.key)_mean_recall_after_prior"] = recall[1]
            print(String(format: "%@: accuracy %.2f%% -> %.2f%%, mean recall (classes with >= %d faces) %.3f -> %.3f; %d faces",
                         set.name, 100 * accuracy[0], 100 * accuracy[1], minClassFaces, recall[0], recall[1], set.faces.count))
        }
        let label = objective == .accuracy ? "mean accuracy" : "mean of mean recalls"
        let (before, after) = (PriorCalibration.score(scored, zero, goal), PriorCalibration.score(scored, bias, goal))
        calibrated.metrics["prior_objective_before"] = before
        calibrated.metrics["prior_objective_after"] = after
        calibrated.metrics["prior_objective_after_2fold"] = heldOut
        print(String(format: "objective (%@ over %d sets): %.4f -> %.4f fitted on all, %.4f fitted on the other half (2 folds)",
                     label, sets.count, before, after, heldOut))
        try Checkpoint.save(classifier, card: calibrated, to: out, like: st)  // storage and int8 ranges kept: only the last bias moved
        print("written to \(out)")
    }
}
