import ArgumentParser
import FER
import FERData
import FEREvaluation
import FERIO
import FERModels
import Foundation

struct CalibrateTemperature: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "temperature",
        abstract: "Fit the softmax temperature on PublicTest so that confidences match accuracy, and write the model with it.",
        discussion: """
        Temperature scaling divides the logits by one number T before the softmax; T is fitted to
        minimise the negative log-likelihood on PublicTest (the selection split: never PrivateTest,
        never a photo set). The predicted classes, and so the accuracy, do not change; the
        confidences printed by predict, video, live and serve do. Prints the expected calibration
        error (ECE, 15 bins) before and after, also with T fitted on one half of PublicTest and
        measured on the other. The weights, their storage (F32 or F16) and any int8 ranges are kept.
        Example: fer calibrate temperature --data fer2013.csv.gz --model default --out calibrated.safetensors
        """)

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String
    @OptionGroup var model: ModelOptions
    @Option(help: "Where to write the calibrated model (.safetensors).") var out: String
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        try OutputNames.check(out, against: [try model.file.resolved()], option: "--out")
    }

    struct Output: Codable {
        var temperature: Float
        var faces: Int
        var nllBefore, nllAfter: Double
        var eceBefore, eceAfter: Double
        /// ECE with T fitted on alternate halves of PublicTest and measured on the other half.
        var eceAfterHeldOut: Double
        var out: String
    }

    func run() throws {
        threads.apply()
        let loaded = try model.loadFile()
        let (classifier, card, st) = (loaded.classifier, loaded.card, loaded.file)
        guard let set = try DatasetLoader.load(data)[.publicTest], set.count > 0 else {
            throw DataError.mismatch(data, reason: "no PublicTest faces")
        }
        // Log-probabilities at T = 1 stand in for the logits: the softmax ignores a per-face shift.
        classifier.temperature = 1
        let logits = classifier.classify(set, batchSize: 256).map { $0.map { log(max($0, 1e-30)) } }
        let labels = set.labels
        let t = TemperatureCalibration.fit(logits: logits, labels: labels)
        func ece(_ rows: [[Float]], _ labels: [Int], _ t: Float) -> Double {
            TemperatureCalibration.expectedCalibrationError(probabilities: rows.map { TemperatureCalibration.probabilities($0, temperature: t) }, labels: labels)
        }
        // The split T is fitted on flatters it: also fit on one half and measure on the other.
        var heldOut = 0.0
        for fold in 0..<2 {
            let fit = logits.indices.filter { $0 % 2 == fold }, check = logits.indices.filter { $0 % 2 != fold }
            let tf = TemperatureCalibration.fit(logits: fit.map { logits[$0] }, labels: fit.map { labels[$0] })
            heldOut += ece(check.map { logits[$0] }, check.map { labels[$0] }, tf) * Double(check.count) / Double(set.count)
        }
        let result = Output(temperature: t, faces: set.count,
                            nllBefore: TemperatureCalibration.negativeLogLikelihood(logits: logits, labels: labels, temperature: 1),
                            nllAfter: TemperatureCalibration.negativeLogLikelihood(logits: logits, labels: labels, temperature: t),
                            eceBefore: ece(logits, labels, 1), eceAfter: ece(logits, labels, t), eceAfterHeldOut: heldOut, out: out)

        // The file as it was (weights, storage, int8 ranges), with the temperature on its card.
        var calibrated = card
        calibrated.temperature = t
        calibrated.metrics["publictest_ece_before_temperature"] = result.eceBefore
        calibrated.metrics["publictest_ece_after_temperature"] = result.eceAfter
        calibrated.metrics["publictest_ece_after_temperature_2fold"] = result.eceAfterHeldOut
        var file = st
        file.metadata["swift-fer"] = String(decoding: try JSONEncoder.sorted.encode(calibrated), as: UTF8.self)
        try file.write(out, as: st.storedAs == .f16 ? .f16 : .f32)  // BF16 files are read, not written

        if json { return try printJSON(result) }
        print(String(format: "temperature %.3f (fitted on %d PublicTest faces)", t, set.count))
        print(String(format: "negative log-likelihood %.4f -> %.4f", result.nllBefore, result.nllAfter))
        print(String(format: "expected calibration error %.2f%% -> %.2f%% (%.2f%% fitted on the other half, 2 folds)",
                     100 * result.eceBefore, 100 * result.eceAfter, 100 * result.eceAfterHeldOut))
        print("written to \(out)")
    }
}
