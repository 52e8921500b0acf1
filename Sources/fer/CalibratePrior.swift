import ArgumentParser
import FER
import FERData
import FEREngine
import FEREvaluation
import FERIO
import FERModels
import Foundation

struct CalibratePrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prior",
        abstract: "Fit per-class offsets on PublicTest that maximise its accuracy, and write the model with them in its last bias.",
        discussion: """
        Uses PublicTest only (the selection split): never PrivateTest, never a photo set. Prints the
        offsets and PublicTest accuracy before and after.
        Example: fer calibrate prior --data fer2013.csv.gz --model runs/x/best.safetensors --out runs/x/prior.safetensors
        """)

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String
    @OptionGroup var model: ModelFileOptions
    @Option(help: "Where to write the calibrated model (.safetensors).") var out: String
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        if AtomicFile.sameFile(model.path, out) { throw ValidationError("\(out) is the input model; refusing to overwrite it") }
    }

    func run() throws {
        threads.apply()
        let (classifier, card, st) = try Checkpoint.load(try model.resolved())
        guard let set = try DatasetLoader.load(data)[.publicTest], set.count >= 2 else {
            throw DataError.mismatch(data, reason: "the prior is fitted on PublicTest and checked on two halves of it: it needs at least 2 PublicTest faces")
        }
        guard let last = classifier.network.layers.last(where: { $0 is Dense }) as? Dense, last.outFeatures == classifier.spec.classes else {
            throw ValidationError("the model's last layer is not a dense layer over the classes")
        }
        let logp = classifier.classify(set, batchSize: 256).map { $0.map { log(max($0, 1e-12)) } }
        let bias = PriorCalibration.fit(logProbabilities: logp, labels: set.labels)
        let before = Double(PriorCalibration.correct(logp, set.labels, .init(repeating: 0, count: bias.count))) / Double(set.count)
        let after = Double(PriorCalibration.correct(logp, set.labels, bias)) / Double(set.count)
        // The fitted split's own accuracy flatters the offsets: estimate them on faces they were not
        // fitted on too (two folds of PublicTest, alternate faces).
        var heldOut = 0
        for fold in 0..<2 {
            let fit = logp.indices.filter { $0 % 2 == fold }, check = logp.indices.filter { $0 % 2 != fold }
            let b = PriorCalibration.fit(logProbabilities: fit.map { logp[$0] }, labels: fit.map { set.labels[$0] })
            heldOut += PriorCalibration.correct(check.map { logp[$0] }, check.map { set.labels[$0] }, b)
        }
        let crossFitted = Double(heldOut) / Double(set.count)
        // The offsets were fitted on log-probabilities, logits / T: in the bias they are worth T times as much.
        for (c, b) in bias.enumerated() { last.bias.values[c] += b * classifier.temperature }
        last.bias.changed()
        var calibrated = card
        for (name, b) in zip(classifier.classNames, bias) { calibrated.metrics["prior_offset_\(name)"] = Double(b) }
        calibrated.metrics["publictest_accuracy_before_prior"] = before
        calibrated.metrics["publictest_accuracy_after_prior"] = after
        calibrated.metrics["publictest_accuracy_after_prior_2fold"] = crossFitted
        try Checkpoint.save(classifier, card: calibrated, to: out, like: st)  // storage and int8 ranges kept: only the last bias moved
        print("offsets: " + zip(classifier.classNames, bias).map { "\($0) \(String(format: "%+.2f", $1))" }.joined(separator: ", "))
        print(String(format: "PublicTest accuracy %.2f%% -> %.2f%% fitted on all of it, %.2f%% fitted on the other half (2 folds); %d faces",
                     100 * before, 100 * after, 100 * crossFitted, set.count))
        print("written to \(out)")
    }
}
