import Foundation
import Synchronization
import Testing
@testable import FERTraining
@testable import FEROptimizers
@testable import FERData
@testable import FEREngine
@testable import FERIO
@testable import FERModels
@testable import FERVision

/// Lowered inference networks (batch norm folded, ReLU fused) in fp32, bf16 and int8 against the
/// trained layers run one by one in fp32.
@Suite("Inference precision") struct PrecisionTests {
    /// A small preset network with batch-norm statistics and affine parameters away from their
    /// initial values, so that folding them is really tested.
    static func network(_ preset: Preset, seed: UInt64 = 7) -> (ModelSpec, Sequential) {
        let spec = ModelSpec(preset: preset, width: preset == .mlp ? 64 : 8, fcWidth: 32, inputSize: 40)
        let net = spec.build(seed: seed)
        var rng = SplitMix64(seed: seed &+ 1)
        for p in net.parameters + net.buffers where p.name.contains("bn") || p.name.contains("running") {
            let positive = p.name.hasSuffix("running_var") || p.name.hasSuffix(".weight")
            for i in 0..<p.count { p.values[i] = positive ? rng.uniform(0.5, 1.5) : rng.uniform(-0.2, 0.2) }
            p.changed()
        }
        return (spec, net)
    }

    static func faces(_ n: Int, side: Int = 40, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [n, 1, side, side], values: (0..<n * side * side).map { _ in rng.unit() })
    }

    /// ||a - b|| / ||b||.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let d = zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let n = b.reduce(Float(0)) { $0 + $1 * $1 }
        return (d / max(n, 1e-12)).squareRoot()
    }

    @Test(arguments: [Preset.mlp, .cnn, .vgg])
    func loweredFP32MatchesTheLayers(_ preset: Preset) throws {
        let (spec, net) = Self.network(preset)
        let x = Self.faces(5, side: spec.inputSize, seed: 3)
        let expected = net.forward(x, mode: .inference).plainValues()
        let lowered = try InferenceNetwork(net, inputShape: spec.inputShape, precision: .fp32)
        let got = lowered.forward(x).plainValues()
        #expect(got.count == expected.count)
        #expect(Self.relativeError(got, expected) < 1e-5, "\(preset): \(Self.relativeError(got, expected))")
        // The trained layers are untouched: running them again gives the same bits.
        #expect(net.forward(x, mode: .inference).plainValues() == expected)
    }

    @Test(arguments: [Preset.cnn, .vgg])
    func int8IsCloseToFP32(_ preset: Preset) throws {
        let (spec, net) = Self.network(preset)
        let fp32 = try InferenceNetwork(net, inputShape: spec.inputShape, precision: .fp32)
        let ranges = fp32.calibrationRanges([Self.faces(64, side: spec.inputSize, seed: 11)])
        // Per layer the input's range, then each output channel's (a channel no face activates is 0).
        #expect(ranges.count == fp32.outputChannels.reduce(0) { $0 + 1 + $1 })
        #expect(ranges.allSatisfy { $0 >= 0 && $0.isFinite } && ranges[0] > 0)
        let int8 = try InferenceNetwork(net, inputShape: spec.inputShape, precision: .int8, ranges: ranges)
        let x = Self.faces(16, side: spec.inputSize, seed: 12)  // not the calibration faces
        let expected = fp32.forward(x).plainValues(), got = int8.forward(x).plainValues()
        // 8-bit activations and weights: about 1% error per layer.
        #expect(Self.relativeError(got, expected) < 0.06, "\(preset): \(Self.relativeError(got, expected))")
        #expect(got != expected)  // it really ran in int8
    }

    /// Signed (s8) activations through PReLUs, as MTCNN runs: slopes negative, zero, small and
    /// above 1, an input in [-1, 1], a pooling and a dense layer after them.
    @Test func int8WithPReLUAndSignedInputIsCloseToFP32() throws {
        var rng = SplitMix64(seed: 5)
        let prelu1 = PReLU(8, name: "p1"), prelu2 = PReLU(16, name: "p2")
        for (i, a) in [-0.5, 0.1, 1.3, 0.25, 0, 0.7, -0.2, 0.9].enumerated() { prelu1.weight.values[i] = Float(a) }
        prelu1.weight.changed()
        let net = Sequential([Conv2D(3, 8, kernel: 3, padding: 0, rng: &rng, name: "c1"), prelu1, Pool2D.maxPool(2, stride: 2, ceilMode: true),
                              Conv2D(8, 16, kernel: 3, padding: 0, rng: &rng, name: "c2"), prelu2, Dense(16 * 5 * 5, 6, rng: &rng, name: "d")])
        func images(_ n: Int, seed: UInt64) -> Tensor {
            var r = SplitMix64(seed: seed)
            return Tensor(shape: [n, 3, 16, 16], values: (0..<n * 3 * 256).map { _ in r.uniform(-1, 1) })
        }
        let fp32 = try InferenceNetwork(net, inputShape: [1, 3, 16, 16], precision: .fp32, signedInput: true)
        let x = images(16, seed: 2)
        let expected = fp32.forward(x).plainValues()
        #expect(Self.relativeError(expected, net.forward(x, mode: .inference).plainValues()) < 1e-5)
        let ranges = fp32.calibrationRanges([images(64, seed: 1)])
        #expect(ranges[0] > 0.9 && ranges[0] <= 1)  // the input's largest |value|
        let int8 = try InferenceNetwork(net, inputShape: [1, 3, 16, 16], precision: .int8, ranges: ranges, signedInput: true)
        let got = int8.forward(x).plainValues()
        #expect(Self.relativeError(got, expected) < 0.06, "\(Self.relativeError(got, expected))")
        #expect(got != expected)
    }

    /// MTCNN in int8 (the bundled weights carry their ranges) finds the faces fp32 finds, in the
    /// same places, on photos it was not calibrated on.
    @Test func mtcnnInInt8FindsWhatFP32Finds() throws {
        let weights = BundledTestModels.mtcnn
        var settings = DetectorSettings()
        settings.precision = .int8
        let fp32 = try MTCNNDetector(weights: weights), int8 = try MTCNNDetector(weights: weights, settings: settings)
        DNNL.setThreads(2)
        // The sample photo shrunk and pasted twice, off-centre, into a darker frame (calibration
        // saw it only whole), and real photos when the shared data has them.
        let small = try Image.read(VisionTests.photo, channels: 3).resized(width: 360, height: 360)
        var collage = Image(width: 1000, height: 760, channels: 3, fill: 60)
        for (ox, oy) in [(60, 40), (600, 380)] {
            for y in 0..<360 {
                for x in 0..<360 {
                    for c in 0..<3 { collage.pixels[((y + oy) * 1000 + x + ox) * 3 + c] = small.pixels[(y * 360 + x) * 3 + c] }
                }
            }
        }
        var photos = [collage]
        let london = (Paths.sharedData as NSString).appendingPathComponent("london-dev/happy")
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: london)) ?? []).sorted().prefix(4) {
            photos.append(try Image.read(london + "/" + name, channels: 3))
        }
        for (k, photo) in photos.enumerated() {
            let a = fp32.detect(photo), b = int8.detect(photo)
            #expect(a.count == b.count && !a.isEmpty, "photo \(k): fp32 \(a), int8 \(b)")
            for (f, g) in zip(a, b) { #expect(f.iou(g) > 0.8, "photo \(k): fp32 \(f), int8 \(g)") }
        }
    }

    /// MTCNN's networks in bf16 and int8 against fp32 on the same input: P-Net's face/no-face
    /// decisions (probability >= 0.6) over the sample photo, O-Net's landmarks and decisions
    /// (>= 0.7) for crops of it. int8 moves P-Net's probabilities by ~16% in norm (8-bit
    /// activations after each PReLU) but few cells cross the threshold.
    @Test(arguments: [Precision.bf16, .int8])
    func mtcnnNetworksAreCloseToFP32(_ precision: Precision) throws {
        if precision == .bf16 && !CPUFeatures.bf16Supported { return }  // oneDNN runs bf16 only on AVX-512 CPUs
        let weights = BundledTestModels.mtcnn
        let fp32 = try MTCNNNetworks(weights: weights), other = try MTCNNNetworks(weights: weights, precision: precision)
        DNNL.setThreads(2)
        let photo = try Image.read(VisionTests.photo, channels: 3)
        let x = MTCNNDetector.input([photo.resized(width: 200, height: 200)])
        let a = fp32.pnet(x).probability, b = other.pnet(x).probability
        let flips = zip(a, b).filter { ($0 >= 0.6) != ($1 >= 0.6) }.count, faces = a.filter { $0 >= 0.6 }.count
        #expect(faces > 20 && flips * 100 <= a.count, "\(precision) P-Net: \(flips) of \(a.count) decisions differ (\(faces) faces)")
        #expect(a != b)
        let crops = MTCNNDetector.input((0..<8).map { k in photo.resized(x: 100 + 10 * k, y: 30, regionWidth: 200, regionHeight: 200, width: 48, height: 48) })
        let c = fp32.onet(crops), d = other.onet(crops)
        #expect(Self.relativeError(d.landmarks, c.landmarks) < 0.05, "\(precision) O-Net landmarks: \(Self.relativeError(d.landmarks, c.landmarks))")
        #expect(zip(c.probability, d.probability).allSatisfy { ($0 >= 0.7) == ($1 >= 0.7) }, "\(precision) O-Net: \(c.probability) against \(d.probability)")
    }

    @Test func mtcnnInInt8WithoutRangesIsAClearError() throws {
        var st = try SafeTensors.read(BundledTestModels.mtcnn)
        st.tensors.removeAll { $0.name.hasPrefix("int8.") }
        let path = Paths.temporaryDirectory("mtcnn") + "/plain.safetensors"
        try st.write(path)
        #expect(!MTCNNNetworks.hasInt8Ranges(path))
        #expect(throws: InferenceError.notCalibrated) { try MTCNNNetworks(weights: path, precision: .int8) }
        #expect(try MTCNNNetworks(weights: path, precision: .fp32).precision == .fp32)
    }

    @Test(.enabled(if: CPUFeatures.bf16Supported, "oneDNN runs bf16 only on AVX-512 CPUs (natively with AVX-512 BF16)"))
    func bf16IsCloseToFP32() throws {
        let (spec, net) = Self.network(.vgg)
        let x = Self.faces(8, side: spec.inputSize, seed: 5)
        let expected = net.forward(x, mode: .inference).plainValues()
        let got = try InferenceNetwork(net, inputShape: spec.inputShape, precision: .bf16).forward(x).plainValues()
        // bf16 keeps 8 bits of mantissa: ~0.4% per rounding.
        #expect(Self.relativeError(got, expected) < 0.03, "\(Self.relativeError(got, expected))")
        #expect(got != expected)
    }

    @Test func whatCannotBeLoweredIsAClearError() throws {
        let resnet = ModelSpec(preset: .resnet, width: 8, inputSize: 40)
        #expect(throws: InferenceError.self) { try InferenceNetwork(resnet.build(seed: 1), inputShape: resnet.inputShape, precision: .int8, ranges: []) }
        let (spec, net) = Self.network(.cnn)
        #expect(throws: InferenceError.notCalibrated) { try InferenceNetwork(net, inputShape: spec.inputShape, precision: .int8) }
        #expect(throws: InferenceError.self) { try InferenceNetwork(net, inputShape: spec.inputShape, precision: .int8, ranges: [1, 2, 3]) }
    }

    /// The shipped model carries its int8 ranges, and int8 changes almost no answer on real faces.
    @Test(.enabled(if: Paths.haveFER2013, "needs ../shared/data/fer2013"))
    func shippedModelInInt8AgreesWithFP32() throws {
        let set = try #require(SharedFER2013.splits?[.publicTest])
        let (model, _, st) = try Checkpoint.load(BundledTestModels.model("default"))
        let ranges = try #require(st[Classifier.int8RangesTensor]?.values)
        let faces = FaceDataset(side: set.side, images: Array(set.images.prefix(600 * set.side * set.side)),
                                labels: Array(set.labels.prefix(600)), classNames: set.classNames)
        DNNL.setThreads(2)
        let fp32 = model.classify(faces, batchSize: 200).map(argmax)
        try model.compile(.int8, ranges: ranges)
        #expect(model.precisionName == "int8")
        let int8 = model.classify(faces, batchSize: 200).map(argmax)
        let agree = zip(fp32, int8).filter { $0 == $1 }.count
        // Without VNNI the weights keep 7 bits (WeightedOp.weightLevels): a few more answers move
        // (587 of 600 on an AVX-512 CPU without VNNI).
        #expect(agree >= (CPUFeatures.vnni ? 588 : 582), "int8 agrees with fp32 on \(agree) of 600 faces")
        // What matters is that int8 loses no accuracy; the answers that move go either way.
        let correct = { (p: [Int]) in zip(p, faces.labels).filter { $0 == $1 }.count }
        #expect(correct(int8) >= correct(fp32) - 4, "fp32 \(correct(fp32)), int8 \(correct(int8)) of 600")
    }

    /// `--precision`: what the CPU or the model cannot do is an error that says why.
    @Test func precisionFlagRefusesWhatCannotRun() throws {
        let dir = Paths.temporaryDirectory("precision")
        let spec = ModelSpec(preset: .cnn, width: 8)
        let model = dir + "/m.safetensors"
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: model)
        writeCSV(dir + "/f.csv", rows: (0..<3).map { ("\($0)", pixelString(value: 40 * $0), "PrivateTest") })
        let int8 = try run(Paths.ferBinary, ["evaluate", "--data", dir + "/f.csv", "--model", model, "--precision", "int8"])
        #expect(int8.status == 1)
        #expect(int8.stderr.contains("calibrate int8"), "\(int8.stderr)")
        let auto = try run(Paths.ferBinary, ["evaluate", "--data", dir + "/f.csv", "--model", model, "--json"])
        #expect(auto.status == 0, "\(auto.stderr)")
        // auto: fp32 unless a native bf16 measured faster (this model has no int8 ranges).
        #expect(auto.stdout.contains("\"precision\" : \"fp32\"") || (CPUFeatures.bf16 && auto.stdout.contains("\"precision\" : \"bf16\"")), "\(auto.stdout)")
        let cascade = try run(Paths.ferBinary, ["predict", "--detector", "haar", "--detector-precision", "int8", VisionTests.photo])
        #expect(cascade.status != 0 && cascade.stderr.contains("--detector-precision"), "\(cascade.stderr)")
        let mixed = try run(Paths.ferBinary, ["calibrate", "int8", "--mtcnn", "--data", dir + "/f.csv", "--model", model, "--out", dir + "/o.safetensors"])
        #expect(mixed.status != 0 && mixed.stderr.contains("--mtcnn"), "\(mixed.stderr)")
        let bf16 = try run(Paths.ferBinary, ["evaluate", "--data", dir + "/f.csv", "--model", model, "--precision", "bf16"])
        // Native bf16: runs. AVX-512 without BF16: runs, emulated, with a warning. AVX2: refused.
        if CPUFeatures.bf16 {
            #expect(bf16.status == 0 && !bf16.stderr.contains("emulates bf16"), "\(bf16.stderr)")
        } else if CPUFeatures.bf16Supported {
            #expect(bf16.status == 0 && bf16.stderr.contains("warning: --precision bf16: this CPU has no AVX-512 BF16"), "\(bf16.stderr)")
        } else {
            #expect(bf16.status == 1 && bf16.stderr.contains("--precision bf16 needs a CPU with AVX-512"), "\(bf16.stderr)")
        }
    }
}

/// Photos decoded at reduced size for the detector, with boxes mapped back to the original.
@Suite("Reduced decoding") struct ReducedDecodingTests {
    /// MTCNN and the bundled model, as `fer predict` runs them.
    static func analyzer() throws -> FaceAnalyzer {
        DNNL.setThreads(2)
        return FaceAnalyzer(detector: try MTCNNDetector(weights: BundledTestModels.mtcnn), classifier: try Checkpoint.load(VisionTests.bundledModel).0)
    }

    @Test func aJPEGDecodesAtTheSmallestScaleThatCoversTheDetector() throws {
        let big = Image(width: 1400, height: 1000, channels: 3, fill: 120)
        let jpeg = try big.encoded(".jpg"), png = try big.encoded(".png")
        let half = try ScaledImage.decode(jpeg, channels: 3, minSide: 640)
        #expect(half.image.width == 700 && half.image.height == 500)
        #expect(half.originalWidth == 1400 && half.originalHeight == 1000 && half.scale == 0.5)
        #expect(try ScaledImage.decode(jpeg, channels: 3, minSide: 300).image.width == 350)  // 1/4
        #expect(try ScaledImage.decode(jpeg, channels: 3, minSide: 0).image.width == 1400)
        #expect(try ScaledImage.decode(png, channels: 3, minSide: 640).image.width == 1400)  // only JPEG decodes faster reduced
        #expect(throws: DataError.self) { _ = try ScaledImage.decode(Array(jpeg.prefix(200)), channels: 3, minSide: 640) }
    }

    /// `jpeg` with an EXIF segment whose Orientation tag is `orientation` (6: turn 90 degrees clockwise to show).
    static func withOrientation(_ jpeg: [UInt8], _ orientation: UInt8) -> [UInt8] {
        let tiff: [UInt8] = Array("MM".utf8) + [0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0]
        let app1 = Array("Exif".utf8) + [0, 0] + tiff
        let length = app1.count + 2
        return Array(jpeg.prefix(2)) + [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + app1 + Array(jpeg.dropFirst(2))
    }

    /// Phone photos are stored sideways with an EXIF Orientation tag: they are analysed as shown,
    /// and the size (and so the scale back to the original) is the shown one.
    @Test func aPhotoTurnedByItsEXIFTagIsAnalysedAsShown() throws {
        // Wide, with the bright block on the right: turned 90 degrees clockwise it is tall, the block at the bottom.
        var pixels = [UInt8](repeating: 30, count: 1400 * 1000)
        for y in 0..<1000 { for x in 1000..<1400 { pixels[y * 1400 + x] = 220 } }
        let jpeg = Self.withOrientation(try Image(width: 1400, height: 1000, channels: 1, pixels: pixels).encoded(".jpg"), 6)
        for minSide in [0, 640] {
            let s = try ScaledImage.decode(jpeg, channels: 1, minSide: minSide)
            let k = minSide == 0 ? 1 : 2
            #expect(s.image.width == 1000 / k && s.image.height == 1400 / k, "decoded \(s.image.width)x\(s.image.height)")
            #expect(s.originalWidth == 1000 && s.originalHeight == 1400 && s.scale == 1 / Double(k))
            let w = s.image.width, h = s.image.height
            #expect(s.image.pixels[(h - 10) * w + w / 2] > 150 && s.image.pixels[10 * w + w / 2] < 100)
        }
        let whole = try Image.decode(jpeg)
        #expect(whole.width == 1000 && whole.height == 1400)
        let header = try #require(ImageHeader.read(jpeg))
        #expect(header.orientation == 6 && header.width == 1400 && header.shownWidth == 1000 && header.shownHeight == 1400)

        // Little-endian EXIF ("II") reads the same; a cut or lying EXIF segment is ignored, not a trap.
        var little = jpeg
        let tiff = 2 + 4 + 6
        little.replaceSubrange(tiff..<(tiff + 26), with: Array("II".utf8) + [42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0])
        #expect(ImageHeader.read(little)?.orientation == 8)
        for cut in [tiff + 3, tiff + 9, tiff + 20] {
            var broken = jpeg
            broken[cut] = 0xEE
            _ = ImageHeader.read(broken)
        }
        var lying = jpeg
        lying[tiff + 7] = 0xFF  // IFD0 offset far past the segment
        #expect(ImageHeader.read(lying)?.orientation == 1)
    }

    /// A phone photo stored sideways with its EXIF turn: the face comes back where it is in the
    /// picture as shown, as in the same picture stored upright.
    @Test func facesInAPhotoStoredSidewaysComeBackWhereTheyAreShown() throws {
        let shown = try Image.read(VisionTests.photo, channels: 1).resized(width: 1536, height: 1152)
        let w = shown.width, h = shown.height
        // Stored turned 90 degrees anticlockwise; orientation 6 turns it back clockwise.
        var stored = [UInt8](repeating: 0, count: w * h)
        for sy in 0..<w { for sx in 0..<h { stored[sy * h + sx] = shown.pixels[sx * w + (w - 1 - sy)] } }
        let dir = Paths.temporaryDirectory("exif")
        try shown.write(dir + "/upright.jpg")
        let sideways = Self.withOrientation(try Image(width: h, height: w, channels: 1, pixels: stored).encoded(".jpg"), 6)
        try Data(sideways).write(to: URL(fileURLWithPath: dir + "/sideways.jpg"))
        let analyzer = try Self.analyzer()
        let a = analyzer.analyze(try analyzer.readPhoto(dir + "/upright.jpg")), b = analyzer.analyze(try analyzer.readPhoto(dir + "/sideways.jpg"))
        #expect(a.count == 1 && b.count == 1)
        let boxA = try #require(a.first?.box), boxB = try #require(b.first?.box)
        #expect(boxA.iou(boxB) > 0.85, "upright \(boxA), sideways \(boxB)")
    }

    @Test func boxesComeBackInTheOriginalsPixels() throws {
        let photo = try Image.read(VisionTests.photo, channels: 3).resized(width: 1536, height: 1536)
        let path = Paths.temporaryDirectory("reduced") + "/big.jpg"
        try photo.write(path)
        let analyzer = try Self.analyzer()
        let reduced = try analyzer.readPhoto(path)
        // A search for faces of 48 pixels or more with P-Net's 12-pixel window needs a quarter.
        #expect(reduced.image.width == 384)
        let full = analyzer.analyze(try Image.read(path, channels: 3)), fromReduced = analyzer.analyze(reduced)
        #expect(full.count == 1 && fromReduced.count == 1)
        let a = try #require(full.first?.box), b = try #require(fromReduced.first?.box)
        #expect(a.iou(b) > 0.85, "full \(a), reduced \(b)")
        #expect(fromReduced.first?.emotion == full.first?.emotion)
    }

    /// A small face in a large photo: under the classifier's 48 pixels in the quarter-size copy, so
    /// it is searched again at the detector's side and cut from a finer decode; the answer is the
    /// full-size decode's.
    @Test func aSmallFaceInALargePhotoIsFoundAndCutFromAFinerDecode() throws {
        let portrait = try Image.read(VisionTests.photo, channels: 3)
        var canvas = Image(width: 1536, height: 1536, channels: 3, fill: 120)
        for y in 0..<portrait.height { for x in 0..<portrait.width { for c in 0..<3 {
            canvas.pixels[((600 + y) * 1536 + 500 + x) * 3 + c] = portrait.pixels[(y * portrait.width + x) * 3 + c]
        } } }
        let path = Paths.temporaryDirectory("small-face") + "/big.jpg"
        try canvas.write(path)
        let analyzer = try Self.analyzer()
        let reduced = try analyzer.readPhoto(path)
        #expect(reduced.reduction == 4)
        let (copy, boxes) = analyzer.find(reduced)
        #expect(boxes.count == 1)
        #expect(boxes.allSatisfy { min($0.width, $0.height) >= analyzer.classifier.sourceSide }, "\(boxes) in a \(copy.image.width)-pixel copy")
        #expect(copy.reduction < 4)
        let full = analyzer.analyze(try Image.read(path, channels: 3)), fromReduced = analyzer.analyze(reduced)
        let a = try #require(full.first?.box), b = try #require(fromReduced.first?.box)
        #expect(a.iou(b) > 0.85, "full \(a), reduced \(b)")
        #expect(fromReduced.first?.emotion == full.first?.emotion)
    }
}

/// bf16 mixed-precision training: the same gradients as fp32 within bf16's rounding, and it learns.
@Suite("bf16 training", .serialized)
struct BF16TrainingTests {
    init() { DNNL.setThreads(2) }

    static func gradients(_ net: Sequential, _ batch: Batch) -> (loss: Float, grads: [[Float]]) {
        for p in net.parameters { memset(p.grad.raw, 0, p.grad.desc.byteCount) }
        let r = forwardBackward(net, batch, loss: SoftmaxCrossEntropy())
        return (r.loss, net.parameters.map { Array($0.grads) })
    }

    /// x rounded to the nearest bf16 (ties to even), kept in a Float.
    static func bf16(_ x: Float) -> Float { Float(bitPattern: (x.bitPattern &+ 0x7FFF &+ ((x.bitPattern >> 16) & 1)) & 0xFFFF_0000) }

    /// Weight gradients of a batch-normalised network move a lot under tiny input changes (at
    /// initialisation, rounding only the input images to bf16 moves the conv gradients by ~20%), so
    /// bf16's error is measured against that floor: fp32 on bf16-rounded images.
    @Test(.enabled(if: CPUFeatures.bf16Supported, "oneDNN runs bf16 only on AVX-512 CPUs"), arguments: [Preset.cnn, .vgg, .resnet])
    func gradientsMatchFP32(_ preset: Preset) {
        var rng = SplitMix64(seed: 21)
        let images = (0..<(16 * 40 * 40)).map { _ in rng.unit() }, labels = (0..<16).map { $0 % 7 }
        let batch = Batch(images: images, labels: labels, size: 40)
        let rounded = Batch(images: images.map(Self.bf16), labels: labels, size: 40)
        let spec = ModelSpec(preset: preset, width: 8, fcWidth: 32, inputSize: 40, dropout: 0)
        let a = spec.build(seed: 5), b = spec.build(seed: 5)
        b.use(.bf16)
        let fp32 = Self.gradients(a, batch), floor = Self.gradients(a, rounded), mixed = Self.gradients(b, batch)
        #expect(abs(fp32.loss - mixed.loss) < 0.02 * fp32.loss, "loss fp32 \(fp32.loss), bf16 \(mixed.loss)")
        for (i, p) in a.parameters.enumerated() where p.decays {
            let e = PrecisionTests.relativeError(mixed.grads[i], fp32.grads[i])
            let f = PrecisionTests.relativeError(floor.grads[i], fp32.grads[i])
            #expect(e < 4 * f + 0.05, "\(preset) \(p.name): bf16 relative error \(e), input rounding alone \(f)")
        }
    }

    @Test(.enabled(if: CPUFeatures.bf16Supported, "oneDNN runs bf16 only on AVX-512 CPUs"))
    func bf16TrainingMemorisesABatch() {
        var rng = SplitMix64(seed: 3)
        let batch = Batch(images: (0..<(32 * 24 * 24)).map { _ in rng.unit() }, labels: (0..<32).map { $0 % 7 }, size: 24)
        let net = ModelSpec(preset: .cnn, width: 16, inputSize: 24, dropout: 0).build(seed: 2)
        net.use(.bf16)
        var cfg = OptimizerConfig()
        cfg.learningRate = 3e-3
        let opt = cfg.make(net.parameters)
        var last = (loss: Float(0), correct: 0)
        for _ in 0..<60 { last = trainStep(net, batch, loss: SoftmaxCrossEntropy(), optimizer: opt) }
        #expect(last.correct == 32, "memorised \(last.correct)/32, loss \(last.loss)")
    }

    /// Native bf16: silent. AVX-512 without BF16: runs, emulated, with a warning. AVX2: refused.
    @Test func trainFlagSaysWhenTheCPUHasNoBF16() throws {
        let r = try run(Paths.ferBinary, ["train", "--data", "/nonexistent.csv", "--out", Paths.temporaryDirectory("bf16") + "/run", "--precision", "bf16", "--epochs", "1"])
        #expect(r.status != 0)  // the data is missing either way
        if CPUFeatures.bf16 {
            #expect(!r.stderr.contains("AVX-512 BF16"))
        } else if CPUFeatures.bf16Supported {
            #expect(r.stderr.contains("warning: this CPU") && r.stderr.contains("emulates bf16"), "\(r.stderr)")
        } else {
            #expect(r.stderr.contains("--precision bf16 needs a CPU with AVX-512"), "\(r.stderr)")
        }
    }
}

/// `--precision auto` is the fastest measured, never what sounds fastest: the rule on injected
/// timings, the cache per CPU and work, and what it picks here.
@Suite("auto precision") struct AutoPrecisionTests {
    @Test func theFastestMeasuredWinsAndFP32KeepsTies() {
        #expect(AutoPrecision.fastest([(.fp32, 1.0), (.bf16, 2.0)]) == .fp32)  // bf16 without AMX: slower, never picked
        #expect(AutoPrecision.fastest([(.fp32, 2.0), (.bf16, 1.0)]) == .bf16)
        #expect(AutoPrecision.fastest([(.fp32, 1.70), (.int8, 0.48), (.bf16, 2.36)]) == .int8)
        #expect(AutoPrecision.fastest([(.fp32, 1.00), (.bf16, 0.98)]) == .fp32)  // within noise: fp32
        #expect(AutoPrecision.fastest([(.fp32, 1.0), (.bf16, .nan)]) == .fp32)
    }

    /// int8 is timed wherever oneDNN has int8 kernels (AVX2 and up) and the model carries ranges;
    /// MTCNN asks for VNNI (its 7-bit weights without it lose faces).
    @Test func int8IsACandidateWhereItsKernelsRun() {
        let bf16: [Precision] = CPUFeatures.bf16 ? [.bf16] : []
        func candidates(_ ranges: Bool, _ kernels: Bool = Precision.int8.isNative) -> [Precision] {
            AutoPrecision.Work.inference("w", hasInt8Ranges: ranges, int8Kernels: kernels).candidates
        }
        #expect(candidates(true, true) == [.fp32, .int8] + bf16)
        #expect(candidates(false, true) == [.fp32] + bf16)
        #expect(candidates(true, false) == [.fp32] + bf16)
        #expect(candidates(true) == [.fp32] + (CPUFeatures.int8 ? [.int8] : []) + bf16)
        #expect(AutoPrecision.Work.training("t").candidates == [.fp32] + bf16)  // int8 never trains
        #expect(!CPUFeatures.vnni || CPUFeatures.int8)  // VNNI CPUs have AVX2
    }

    /// A named precision is checked by the same rules, whatever runs it, and the error names the option.
    @Test func aNamedPrecisionThatCannotRunIsRefusedByName() throws {
        func named(_ p: PrecisionChoice, _ work: AutoPrecision.Work, _ option: String) -> String? {
            do { _ = try AutoPrecision.resolve(p, for: work, option: option, cacheFile: nil) { _ in Issue.record("timed a named precision"); return 0 }; return nil }
            catch { return "\(error)" }
        }
        let uncalibrated = AutoPrecision.Work.inference("w", hasInt8Ranges: false)
        #expect(named(.int8, uncalibrated, "--detector-precision")?.hasPrefix("--detector-precision int8: int8 needs activation ranges") == true)
        #expect(named(.int8, .training("t"), "--precision")?.contains("int8 is for inference") == true)
        #expect(named(.fp32, .training("t"), "--precision") == nil)
        #expect((named(.bf16, uncalibrated, "--precision") == nil) == CPUFeatures.bf16Supported)
        #expect(Precision.allCases.allSatisfy { PrecisionChoice($0).fixed == $0 } && PrecisionChoice.auto.fixed == nil)
    }

    @Test func measuredOncePerCPUAndWorkThenCached() throws {
        let file = Paths.temporaryDirectory("auto") + "/precision.json"
        var calls: [Precision] = []
        let slowBF16: (Precision) -> Double = { calls.append($0); return $0 == .bf16 ? 0.8 : 0.4 }
        let first = AutoPrecision.choose([.fp32, .bf16], work: "train x", cacheFile: file, measure: slowBF16)
        #expect(first.choice == .fp32 && !first.cached && calls == [.fp32, .bf16] && first.reason.contains("bf16 800.00 ms"))
        let again = AutoPrecision.choose([.fp32, .bf16], work: "train x", cacheFile: file) { _ in Issue.record("measured again"); return 0 }
        #expect(again.choice == .fp32 && again.cached)
        // Other work is measured on its own, and there bf16 may win.
        let other = AutoPrecision.choose([.fp32, .bf16], work: "train y", cacheFile: file) { $0 == .bf16 ? 0.1 : 0.4 }
        #expect(other.choice == .bf16 && !other.cached)
        // A damaged cache is measured again, not trusted.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: file))
        calls = []
        #expect(AutoPrecision.choose([.fp32, .bf16], work: "train x", cacheFile: file, measure: slowBF16).choice == .fp32 && calls.count == 2)
        // One candidate: nothing to time.
        let only = AutoPrecision.choose([.fp32], work: "z", cacheFile: file) { _ in Issue.record("timed a lone candidate"); return 0 }
        #expect(only.choice == .fp32 && only.seconds.isEmpty)
    }

    /// Runs started together (MPI ranks, parallel tests) take turns on the cache: work already being
    /// measured is measured once and the others read its figures, and no run's entry is lost to
    /// another's write. (flock locks per open file, so threads of one process contend as processes do.)
    @Test func runsStartedTogetherMeasureOnceAndLoseNoEntry() throws {
        let file = Paths.temporaryDirectory("auto-together") + "/precision.json"
        let calls = Mutex<[String]>([])
        let works = (0..<8).map { $0 % 2 == 0 ? "train shared" : "train own \($0)" }
        let choices = Mutex<[String: Set<Precision>]>([:])
        DispatchQueue.concurrentPerform(iterations: works.count) { i in
            let d = AutoPrecision.choose([.fp32, .bf16], work: works[i], cacheFile: file) { p in
                calls.withLock { $0.append(works[i]) }
                usleep(20_000)  // long enough for the others to arrive while it measures
                return p == .bf16 ? Double(i + 1) : 2.5
            }
            choices.withLock { _ = $0[works[i], default: []].insert(d.choice) }
        }
        // Each work measured once (two candidates each): the shared one by whichever run came first.
        let counted = calls.withLock { Dictionary(grouping: $0, by: { $0 }).mapValues(\.count) }
        #expect(counted == Dictionary(uniqueKeysWithValues: Set(works).map { ($0, 2) }), "\(counted)")
        #expect(choices.withLock { $0["train shared"]?.count } == 1)  // every run of it chose alike
        let table = AutoPrecision.load(file)
        #expect(table.count == Set(works).count, "\(table.keys.sorted())")
    }

    /// On this CPU: training and inference never resolve to an arithmetic the measurement found slower.
    @Test func autoOnThisCPU() throws {
        DNNL.setThreads(2)
        let spec = ModelSpec(preset: .cnn, width: 8, inputSize: 40)
        let (train, trainDecision) = try Trainer.resolvePrecision(.auto, spec: spec, batch: 16, cacheFile: nil)
        let decision = try #require(trainDecision)
        if CPUFeatures.bf16 {
            #expect(decision.seconds[train.rawValue]! <= decision.seconds.values.min()! * 1.04, "\(decision.reason)")
        } else {
            #expect(train == .fp32 && decision.seconds.isEmpty, "\(decision.reason)")
        }
        let (infer, inferDecision) = try Classifier(spec: spec).resolvePrecision(.auto, ranges: nil, cacheFile: nil)
        let d = try #require(inferDecision)
        #expect(d.seconds.isEmpty ? infer == .fp32 : d.seconds[infer.rawValue]! <= d.seconds.values.min()! * 1.04, "\(d.reason)")
        #expect(infer != .int8)  // no ranges, no int8
    }

    @Test func trainRecordsWhatAutoPickedAndWhy() throws {
        let dir = Paths.temporaryDirectory("autotrain")
        writeCSV(dir + "/f.csv", rows: (0..<40).map { ("\($0 % 7)", pixelString(value: 5 * $0), $0 < 32 ? "Training" : "PublicTest") })
        let r = try run(Paths.ferBinary, ["train", "--data", dir + "/f.csv", "--preset", "cnn", "--width", "4", "--batch-size", "16", "--epochs", "1", "--out", dir + "/run", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try JSONDecoder().decode(TrainConfig.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/run/config.json")))
        #expect(config.precisionChoice?.hasPrefix("auto: \(config.precision?.rawValue ?? "?")") == true, "\(config.precisionChoice ?? "nil")")
        #expect(r.stderr.contains("precision auto: "))
        if !CPUFeatures.bf16 { #expect(config.precision == .fp32) }
    }
}
