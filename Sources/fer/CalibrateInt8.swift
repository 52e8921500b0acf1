import ArgumentParser
import FERData
import FEREngine
import FERIO
import FERModels
import Foundation

struct CalibrateInt8: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate-int8",
        abstract: "Measure a model's activation ranges on Training faces and write the model with them, for --precision int8.",
        discussion: """
        Runs the model in fp32 over the first --faces Training faces (never PublicTest, PrivateTest or a
        photo set) and stores, for every convolution and dense layer, the largest input and output
        value seen (tensor "int8.ranges"). With them, --precision int8 (or auto on a CPU with VNNI)
        runs u8 activations and s8 weights.
        Example: fer calibrate-int8 --data fer2013.csv.gz --model runs/x/best.safetensors --out runs/x/int8.safetensors
        """)

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String
    @OptionGroup var model: ModelOptions
    @Option(help: "Training faces to measure (centre crops, no augmentation).") var faces: Int = 2048
    @Option(help: "Where to write the model with its ranges (.safetensors).") var out: String
    @Flag(help: "Store the weights as F16 (as the bundled models are).") var half = false
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        if AtomicFile.sameFile(model.path, out) { throw ValidationError("\(out) is the input model; refusing to overwrite it") }
        guard faces >= 64, faces <= 28_709 else { throw ValidationError("--faces must be between 64 and 28709, got \(faces)") }
    }

    func run() throws {
        threads.apply()
        let (classifier, card, _) = try Checkpoint.load(try Bundled.resolve(model.model))
        guard let set = try DatasetLoader.load(data)[.training], set.count > 0 else { throw DataError.mismatch(data, reason: "no Training faces") }
        let lowered = try InferenceNetwork(classifier.network, inputShape: classifier.spec.inputShape, precision: .fp32)
        let n = min(faces, set.count)
        let batches = stride(from: 0, to: n, by: 256).map { evaluationBatch(set, $0..<min($0 + 256, n), size: classifier.spec.inputSize).tensor() }
        let ranges = lowered.calibrationRanges(batches)
        var extra = SafeTensors()
        extra.add(Classifier.int8RangesTensor, shape: [ranges.count], values: ranges)
        var calibrated = card
        calibrated.metrics["int8_calibration_faces"] = Double(n)
        try Checkpoint.save(classifier, card: calibrated, to: out, extra: extra, half: half)
        print("ranges of \(ranges.count / 2) layers from \(n) Training faces (input max, output max):")
        for k in 0..<ranges.count / 2 { print(String(format: "  %2d  %8.3f  %8.3f", k + 1, ranges[2 * k], ranges[2 * k + 1])) }
        print("written to \(out)")
    }
}
