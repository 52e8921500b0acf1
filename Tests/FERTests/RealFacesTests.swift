import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

/// The pieces that carry the model from FER2013's faces to real photos: photometric augmentation,
/// FER+ blended targets, the measured crop framing and the photo-set evaluation.
@Suite("Real faces", .serialized) struct RealFacesTests {
    static let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let bundledModel = BundledTestModels.model("default")
    static let mtcnnWeights = BundledTestModels.mtcnn

    /// A 40x40 test image with structure: a gradient and a bright square.
    static func pattern() -> [Float] {
        (0..<1600).map { i in
            let x = i % 40, y = i / 40
            return (x > 10 && x < 25 && y > 12 && y < 30) ? 0.9 : Float(x + y) / 100
        }
    }

    @Test func photometricIsSeededBoundedAndChangesTheImage() {
        let p = Photometric()
        var changed = 0
        for seed in 0..<50 as Range<UInt64> {
            var a = Self.pattern(), b = Self.pattern()
            var r1 = SplitMix64(seed: seed), r2 = SplitMix64(seed: seed)
            p.apply(&a, size: 40, rng: &r1)
            p.apply(&b, size: 40, rng: &r2)
            #expect(a == b, "seed \(seed) is not reproducible")
            #expect(a.allSatisfy { $0 >= 0 && $0 <= 1 && $0.isFinite })
            if zip(a, Self.pattern()).contains(where: { abs($0 - $1) > 1e-3 }) { changed += 1 }
        }
        #expect(changed == 50)
        // Off means off.
        var img = Self.pattern(), rng = SplitMix64(seed: 3)
        Photometric.none.apply(&img, size: 40, rng: &rng)
        #expect(zip(img, Self.pattern()).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func blurAndDownscaleKeepAFlatImageFlat() {
        var flat = [Float](repeating: 0.37, count: 1600)
        Photometric.gaussianBlur(&flat, size: 40, sigma: 1.1)
        #expect(flat.allSatisfy { abs($0 - 0.37) < 1e-5 })
        Photometric.downAndUp(&flat, size: 40, factor: 0.4)
        #expect(flat.allSatisfy { abs($0 - 0.37) < 1e-5 })
        // Blur spreads a single bright pixel but keeps its mass (away from the borders).
        var dot = [Float](repeating: 0, count: 1600)
        dot[20 * 40 + 20] = 1
        Photometric.gaussianBlur(&dot, size: 40, sigma: 1)
        #expect(abs(dot.reduce(0, +) - 1) < 1e-4 && dot[20 * 40 + 20] < 0.3 && dot[20 * 40 + 21] > 0.05)
    }

    @Test func jpegCompressionIsSeededBoundedAndLossy() throws {
        var p = Photometric.none
        p.jpeg = 1
        var a = Self.pattern(), b = Self.pattern()
        var r1 = SplitMix64(seed: 11), r2 = SplitMix64(seed: 11)
        p.apply(&a, size: 40, rng: &r1)
        p.apply(&b, size: 40, rng: &r2)
        #expect(a == b)
        #expect(a.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Lossy: the sharp square's edges ring, but the picture survives (mean error a few levels).
        let error = zip(a, Self.pattern()).map { abs($0 - $1) }
        #expect(error.max()! > 0.02)
        #expect(error.reduce(0, +) / Float(error.count) < 0.03)
        // Quality matters: 10 loses more than 95.
        var low = Self.pattern(), high = Self.pattern()
        Photometric.jpegRoundTrip(&low, size: 40, quality: 10)
        Photometric.jpegRoundTrip(&high, size: 40, quality: 95)
        let err = { (x: [Float]) in zip(x, Self.pattern()).map { abs($0 - $1) }.reduce(0, +) }
        #expect(err(low) > 2 * err(high))
        // The codec refuses a quality out of range with an error, not a trap.
        #expect(throws: DataError.self) { _ = try Image(width: 4, height: 4, channels: 1, pixels: [UInt8](repeating: 9, count: 16)).jpegRoundTrip(quality: 0) }
        #expect(Photometric().jpeg == 0.3 && Photometric.none.jpeg == 0)
    }

    @Test func cardsFromBeforeJPEGDecodeWithItOff() throws {
        let old = #"{"brightness":0.15,"contrast":0.3,"gamma":0.3,"blur":0.3,"noise":0.3,"downscale":0.2}"#
        let p = try JSONDecoder().decode(Photometric.self, from: Data(old.utf8))
        #expect(p.jpeg == 0 && p.blur == 0.3)
        let round = try JSONDecoder().decode(Photometric.self, from: JSONEncoder().encode(Photometric()))
        #expect(round == Photometric())
    }

    @Test func photometricRangesAreValidated() throws {
        var c = TrainConfig()
        c.augmentation.photometric = Photometric()
        try c.validate()
        c.augmentation.photometric?.blur = 1.5
        #expect(throws: TrainingError.self) { try c.validate() }
        c.augmentation.photometric?.blur = 0.3
        c.augmentation.photometric?.gamma = -0.1
        #expect(throws: TrainingError.self) { try c.validate() }
    }

    @Test func mixupIsSeededBoundedAndKeepsTheLabelDominant() {
        var rng = SplitMix64(seed: 5)
        let images = (0..<(8 * 16)).map { _ in rng.unit() }
        let batch = Batch(images: images, labels: [0, 1, 2, 3, 4, 5, 6, 0], size: 4)
        var r1 = SplitMix64(seed: 9), r2 = SplitMix64(seed: 9)
        let a = Mixup.apply(batch, alpha: 0.4, classes: 7, rng: &r1), b = Mixup.apply(batch, alpha: 0.4, classes: 7, rng: &r2)
        #expect(a.images == b.images && a.targets == b.targets)
        let t = a.targets ?? []
        #expect(t.count == 56 && a.images.allSatisfy { $0 >= 0 && $0 <= 1 })
        for i in 0..<8 {
            #expect(abs(t[i * 7 ..< i * 7 + 7].reduce(0, +) - 1) < 1e-5)
            #expect(t[i * 7 + batch.labels[i]] >= 0.5 - 1e-6, "the image's own label must keep the larger share")
        }
        // Beta(a, a) draws: inside (0, 1), mean near 1/2.
        var g = SplitMix64(seed: 1)
        let draws = (0..<4000).map { _ in Mixup.beta(0.4, rng: &g) }
        #expect(draws.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(abs(draws.reduce(0, +) / 4000 - 0.5) < 0.03)
    }

    @Test func ferPlusBlendKeepsTheLabelAndMixesTheVotes() throws {
        // Three rows: votes for Happy/Neutral; an unnamed row; a row with no votes among the seven.
        var votes = [[Float]](repeating: .init(repeating: 0, count: 7), count: 3)
        votes[0][3] = 6; votes[0][6] = 4
        votes[1][0] = 10
        let plus = FERPlus(votes: votes, named: [true, false, true], otherVotes: [0, 0, 10])
        var data = FaceDataset(side: 48, images: .init(repeating: 0, count: 3 * 2304), labels: [6, 2, 4])
        data.rowNumbers = [0, 1, 2]
        let blended = try plus.relabel(data, mode: .blend, weight: 0.5)
        #expect(blended.labels == [6, 2, 4])
        let t = try #require(blended.targets)
        #expect(t.count == 21)
        for r in 0..<3 { #expect(abs(t[r * 7 ..< r * 7 + 7].reduce(0, +) - 1) < 1e-6) }
        #expect(abs(t[3] - 0.3) < 1e-6 && abs(t[6] - 0.7) < 1e-6)   // 0.5 x 0.6; 0.5 + 0.5 x 0.4
        #expect(t[7 + 2] == 1 && t[14 + 4] == 1)                    // unnamed / voteless rows keep one-hot
        let none = try plus.relabel(data, mode: .blend, weight: 0)
        #expect(none.targets?[6] == 1 && none.targets?[3] == 0)
    }

    @Test func framingRoundTrips() throws {
        let f = CropFraming(left: -0.1, top: 0.02, side: 1.08)
        let box = FaceBox(x: 100, y: 50, width: 200, height: 200)
        let fr = f.frame(box)
        let back = CropFraming.measured(box: box, frameX: fr.x, frameY: fr.y, frameSide: fr.side)
        #expect(abs(back.left - f.left) < 1e-9 && abs(back.top - f.top) < 1e-9 && abs(back.side - f.side) < 1e-9)
        let m = try #require(CropFraming.median([f, back, CropFraming(left: 5, top: 5, side: 5)]))
        #expect(abs(m.left - f.left) < 1e-9 && abs(m.top - f.top) < 1e-9 && abs(m.side - f.side) < 1e-9)
    }

    @Test func grayFrameRepeatsTheBorderPastTheEdges() {
        // A 4x4 image whose left half is dark and right half bright; a frame reaching past the left
        // edge repeats the dark column.
        let img = Image(width: 4, height: 4, channels: 1, pixels: [10, 10, 200, 200, 10, 10, 200, 200, 10, 10, 200, 200, 10, 10, 200, 200])
        let out = img.grayFrame(x: -4, y: 0, side: 4, out: 4)
        #expect(out.allSatisfy { $0 == 10 })
        let inside = img.grayFrame(x: 0, y: 0, side: 4, out: 4)
        #expect(inside == img.pixels)
    }

    /// A FER2013 face pasted into a large image comes back framed within a few pixels of its frame.
    @Test func calibratedFramingFindsPastedFER2013Faces() throws {
        guard let splits = SharedFER2013.splits, let check = splits[.publicTest] else { return }
        let detector = try MTCNNDetector(weights: Self.mtcnnWeights)
        let calibrated = CropCalibration.error(check, detector: detector, count: 60, seed: 11) { b in
            let f = CropFraming.mtcnn.frame(b)
            return (f.x, f.y, f.side, f.side)
        }
        let old = CropCalibration.error(check, detector: detector, count: 60, seed: 11) { b in
            let e = b.expanded(by: 0.1, within: .max, .max)
            return (Double(e.x), Double(e.y), Double(e.width), Double(e.height))
        }
        #expect(calibrated.found >= 45, "MTCNN found only \(calibrated.found) of 60 pasted faces")
        #expect(calibrated.medianEdgeError < 5, "median edge error \(calibrated.medianEdgeError) px of 48")
        #expect(calibrated.meanEdgeError < old.meanEdgeError, "calibrated \(calibrated.meanEdgeError) vs box+10% \(old.meanEdgeError)")
    }

    /// The turned frame with no turn is the plain frame (up to resampling), and past the edges it
    /// repeats the border too.
    @Test func turnedFrameWithoutATurnIsThePlainFrame() throws {
        let face = try Image.read(Self.photo, channels: 3)
        let plain = face.grayFrame(x: 100, y: 80, side: 240, out: 48)
        let turned = try #require(face.grayFrame(centerX: 220, centerY: 200, side: 240, degrees: 0, out: 48))
        let diff = zip(plain, turned).map { abs(Int($0) - Int($1)) }
        #expect(Double(diff.reduce(0, +)) / Double(diff.count) < 5, "mean difference \(Double(diff.reduce(0, +)) / Double(diff.count))")
        let img = Image(width: 4, height: 4, channels: 1, pixels: [10, 10, 200, 200, 10, 10, 200, 200, 10, 10, 200, 200, 10, 10, 200, 200])
        #expect(img.grayFrame(centerX: -2, centerY: 2, side: 4, degrees: 30, out: 4)?.allSatisfy { $0 == 10 } == true)
        #expect(img.grayFrame(centerX: -100, centerY: -100, side: 4, degrees: 0, out: 4) == nil)
    }

    /// Eye alignment: FER2013 faces pasted upright and turned by ±15 degrees; MTCNN's eyes see the
    /// turn, and the levelled crops of the two pastes are closer to each other than the plain crops.
    @Test func alignmentLevelsTurnedFaces() throws {
        guard let splits = SharedFER2013.splits, let faces = splits[.publicTest] else { return }
        let detector = try MTCNNDetector(weights: Self.mtcnnWeights)
        let classifier = try Checkpoint.load(Self.bundledModel).0
        let plain = FaceAnalyzer(detector: detector, classifier: classifier), levelled = FaceAnalyzer(detector: detector, classifier: classifier)
        levelled.reading.align = true
        func pasted(_ i: Int, turnedBy angle: Double) -> Image {
            let big = Image(width: 48, height: 48, channels: 1, pixels: Array(faces.image(i))).resized(width: 240, height: 240)
            let turned = big.rotated(degrees: angle, centerX: 120, centerY: 120)
            var canvas = Image(width: 600, height: 600, channels: 1, fill: 128)
            for y in 0..<240 { for x in 0..<240 { canvas.pixels[(y + 180) * 600 + x + 180] = turned.pixels[y * 240 + x] } }
            return canvas.bgr
        }
        func box(_ photo: Image) -> FaceBox? { detector.detect(photo, minFace: 80, maxFace: 0, fullResolution: true).max { $0.width < $1.width } }
        func distance(_ a: [UInt8], _ b: [UInt8]) -> Double { Double(zip(a, b).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(a.count) }
        var found = 0, rollError = 0.0, plainDistance = 0.0, levelledDistance = 0.0
        for k in 0..<16 {
            let angle = k % 2 == 0 ? 15.0 : -15.0, i = k * 97
            let upright = pasted(i, turnedBy: 0), turned = pasted(i, turnedBy: angle)
            guard let b0 = box(upright), let b1 = box(turned), let r0 = b0.roll, let r1 = b1.roll else { continue }
            found += 1
            // Turning the picture counter-clockwise (on screen) by `angle` lowers its left eye: the roll drops by `angle`.
            rollError += abs(r1 - r0 + angle)
            plainDistance += distance(plain.faceInput(upright, b0), plain.faceInput(turned, b1))
            levelledDistance += distance(levelled.faceInput(upright, b0), levelled.faceInput(turned, b1))
        }
        #expect(found >= 10, "MTCNN found \(found) of 16 face pairs")
        #expect(rollError / Double(max(found, 1)) < 4, "mean roll error \(rollError / Double(max(found, 1))) degrees")
        #expect(levelledDistance < plainDistance * 0.85, "levelled \(levelledDistance / Double(found)), plain \(plainDistance / Double(found)) grey levels")
        let r = try run(Paths.ferBinary, ["predict", "--align", "--margin", "0.1", Self.photo])
        #expect(r.status != 0 && r.stderr.contains("--align"))
        let c = try run(Paths.ferBinary, ["predict", "--align", "--detector", "haar", Self.photo])
        #expect(c.status != 0 && c.stderr.contains("landmarks"))
    }

    /// A small labelled photo folder: the astronaut pasted into a larger canvas (one face, Happy),
    /// and a picture with no face, which counts as wrong and is listed.
    static func makePhotoSet() throws -> String {
        let root = Paths.temporaryDirectory("photos")
        let face = try Image.read(photo, channels: 3)
        var canvas = Image(width: 900, height: 700, channels: 3, fill: 90)
        for y in 0..<face.height {
            for x in 0..<face.width {
                for c in 0..<3 { canvas.pixels[((y + 120) * 900 + x + 300) * 3 + c] = face.pixels[(y * face.width + x) * 3 + c] }
            }
        }
        try FileManager.default.createDirectory(atPath: root + "/happy", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/Neutral", withIntermediateDirectories: true)
        try canvas.write(root + "/happy/pasted.jpg")
        var empty = Image(width: 640, height: 480, channels: 3, fill: 150)
        empty.rectangle(100, 100, 200, 120, (30, 30, 220), thickness: -1)
        try empty.write(root + "/Neutral/noface.png")
        return root
    }

    @Test func photoSetEvaluationCountsMissingFacesAsWrong() throws {
        let root = try Self.makePhotoSet()
        DNNL.setThreads(2)
        let analyzer = FaceAnalyzer(detector: try MTCNNDetector(weights: Self.mtcnnWeights), classifier: try Checkpoint.load(Self.bundledModel).0)
        let r = try PhotoSetEvaluation.run(root, analyzer: analyzer)
        #expect(r.photos.count == 2)
        #expect(r.accuracy == 0.5)
        #expect(r.failures.map { ($0.file as NSString).lastPathComponent } == ["noface.png"])
        #expect(r.failures.first?.problem == "no face found")
        #expect(r.report.classes[Emotion.happy.rawValue].recall == 1)
        #expect(r.report.classes[Emotion.neutral.rawValue].support == 1 && r.report.classes[Emotion.neutral.rawValue].recall == 0)
        // Another folder beside the emotions is an error, not skipped.
        try FileManager.default.createDirectory(atPath: root + "/smiling", withIntermediateDirectories: true)
        #expect(throws: DataError.self) { _ = try PhotoSetEvaluation.scan(root) }
    }

    @Test func evaluatePhotosCommandPrintsJSON() throws {
        let root = try Self.makePhotoSet()
        let r = try run(Paths.ferBinary, ["evaluate", "--photos", root, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["accuracy"] as? Double == 0.5)
        let both = try run(Paths.ferBinary, ["evaluate", "--photos", root, "--data", "x.csv"])
        #expect(both.status != 0 && both.stderr.contains("one of --data"))
    }
}
