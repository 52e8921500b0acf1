import ArgumentParser
import FER
import FERData
import FEREngine
import FERIO
import FERModels
import FERVision
import Foundation

struct CalibrateInt8: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "int8",
        abstract: "Measure a model's activation ranges on Training faces and write the model with them, for --precision int8.",
        discussion: """
        Runs the model in fp32 over the first --faces Training faces (never PublicTest, PrivateTest or a
        photo set) and stores, for every convolution and dense layer, the largest input and output
        value seen (tensor "int8.ranges"). With them, --precision int8 (or auto, where it measures faster than fp32)
        runs u8 activations and s8 weights.
        Example: fer calibrate int8 --data fer2013.csv.gz --model runs/x/best.safetensors --out runs/x/int8.safetensors

        With --mtcnn it calibrates the face detector's three networks instead (the bundled weights,
        models/mtcnn/mtcnn.safetensors): they run in fp32 over the bundled sample photo and --faces
        Training faces pasted into larger images, and every layer's largest |value| is stored
        (tensors "int8.ranges.pnet", "...rnet", "...onet") for --detector-precision int8.
        Example: fer calibrate int8 --mtcnn --data fer2013.csv.gz --out /tmp/mtcnn.safetensors
        """)

    @Option(help: "FER2013 CSV (plain or .gz) or image-folder root.") var data: String
    @OptionGroup var model: ModelFileOptions
    @Option(help: "Training faces to measure (centre crops, no augmentation).") var faces: Int = 2048
    @Option(help: "Where to write the model with its ranges (.safetensors).") var out: String
    @Flag(help: "Store the weights as F16 (as the bundled models are).") var half = false
    @Flag(help: "Calibrate the bundled MTCNN detector's networks, not a classifier.") var mtcnn = false
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard out.lowercased().hasSuffix(".safetensors") else { throw ValidationError("\(out): the output must end in .safetensors") }
        if mtcnn, model.model != nil || half { throw ValidationError("--model and --half describe a classifier; --mtcnn calibrates the bundled detector") }
        try OutputNames.check(out, against: [mtcnn ? try BundledModels.mtcnnWeights : try model.resolved()], option: "--out")
        guard faces >= 64, faces <= 28_709 else { throw ValidationError("--faces must be between 64 and 28709, got \(faces)") }
    }

    func run() throws {
        threads.apply()
        if mtcnn { return try calibrateMTCNN() }
        let loaded = try model.load()
        let (classifier, card) = (loaded.classifier, loaded.card)
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
        print("ranges from \(n) Training faces: \(Self.summary(ranges, lowered.outputChannels))")
        print("written to \(out)")
    }

    /// The detector's ranges: P-Net over whole images' pyramids, R-Net and O-Net over the crops
    /// the detection hands them, exactly as a photo is analysed.
    func calibrateMTCNN() throws {
        guard let set = try DatasetLoader.load(data)[.training], set.count > 0 else { throw DataError.mismatch(data, reason: "no Training faces") }
        let detector = try MTCNNDetector(weights: try BundledModels.mtcnnWeights)
        detector.networks.recordedRanges = ([], [], [])
        _ = detector.faces(try Image.read(Checkout.samplePhoto, channels: 3))
        let n = min(faces, set.count)
        var rng = SplitMix64(seed: 1)
        let bar = ProgressBar(total: n, label: "faces")
        for (k, i) in TrainingBatches.order(count: set.count, seed: 1, epoch: 0).prefix(n).enumerated() {
            let p = CropCalibration.paste(set, i, rng: &rng)
            _ = detector.detect(p.image, minFace: Int(p.frameSide / 3), maxFace: 0, fullResolution: true)
            bar.update(k + 1)
        }
        bar.finish()
        guard let r = detector.networks.recordedRanges, !r.rnet.isEmpty, !r.onet.isEmpty else {
            throw DataError.mismatch("calibration", reason: "MTCNN proposed no face to R-Net or O-Net in the sample photo and \(n) pasted faces")
        }
        try detector.networks.save(out, ranges: r)
        let nets = detector.networks
        for (name, v, channels) in [("P-Net", r.pnet, nets.pnetNetwork.outputChannels), ("R-Net", r.rnet, nets.rnetNetwork.outputChannels),
                                    ("O-Net", r.onet, nets.onetNetwork.outputChannels)] {
            print("\(name): \(Self.summary(v, channels))")
        }
        print("from the sample photo and \(n) pasted Training faces; written to \(out)")
    }

    /// Per layer: the input's range, then the smallest and largest of its output channels' ranges.
    static func summary(_ ranges: [Float], _ channels: [Int]) -> String {
        var at = 0
        return channels.enumerated().map { k, c in
            defer { at += 1 + c }
            let out = ranges[(at + 1)...(at + c)]
            return String(format: "layer %d in %.2f out %.2f-%.2f", k + 1, ranges[at], out.min() ?? 0, out.max() ?? 0)
        }.joined(separator: "; ")
    }
}
