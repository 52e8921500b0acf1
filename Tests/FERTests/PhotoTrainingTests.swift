import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FERTraining
@testable import FERVision

/// Training on folders of labelled photos: faces through the photo pipeline, the face cache,
/// weighted mixing of datasets, several validation sets, and the detector's second search for
/// faces that fill the photo.
@Suite("Training on photo folders", .serialized) struct PhotoTrainingTests {
    static let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let mtcnnWeights = BundledTestModels.mtcnn

    static func analyzer() throws -> FaceAnalyzer {
        DNNL.setThreads(2)
        return FaceAnalyzer(detector: try MTCNNDetector(weights: mtcnnWeights), classifier: Classifier(spec: ModelSpec(preset: .cnn, width: 8, inputSize: 48)))
    }

    /// The sample portrait, shrunk by `scale`, pasted at (x, y) into a plain canvas.
    static func pasted(at x: Int, _ y: Int, scale: Double = 1, canvas: (Int, Int) = (900, 700), twice: Bool = false) throws -> Image {
        let face = try Image.read(photo, channels: 3)
        let f = face.resized(width: Int(Double(face.width) * scale), height: Int(Double(face.height) * scale))
        var c = Image(width: canvas.0, height: canvas.1, channels: 3, fill: 90)
        for (ox, oy) in twice ? [(x, y), (x + f.width + 20, y)] : [(x, y)] {
            for row in 0..<f.height {
                for col in 0..<f.width {
                    for k in 0..<3 { c.pixels[((row + oy) * canvas.0 + col + ox) * 3 + k] = f.pixels[(row * f.width + col) * 3 + k] }
                }
            }
        }
        return c
    }

    /// ROOT/train/{happy,neutral}, ROOT/val/happy: three pasted faces, a photo with no face, one with two.
    static func makeFolder() throws -> String {
        let root = Paths.temporaryDirectory("photofolder")
        for d in ["train/happy", "train/neutral", "val/happy"] {
            try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        try pasted(at: 300, 120).write(root + "/train/happy/a.jpg")
        try pasted(at: 100, 60, scale: 0.8).write(root + "/train/happy/b.png")
        var empty = Image(width: 640, height: 480, channels: 3, fill: 150)
        empty.rectangle(100, 100, 200, 120, (30, 30, 220), thickness: -1)
        try empty.write(root + "/train/neutral/noface.png")
        try pasted(at: 20, 100, scale: 0.6, canvas: (800, 500), twice: true).write(root + "/train/neutral/two.jpg")
        try pasted(at: 200, 90, scale: 0.9).write(root + "/val/happy/c.jpg")
        return root
    }

    @Test func photoFolderFacesAreThePipelinesAndCached() throws {
        let root = try Self.makeFolder(), cache = Paths.temporaryDirectory("facecache")
        let analyzer = try Self.analyzer()
        let first = try PhotoFaces.load(root + "/train", analyzer: analyzer, cacheFolder: cache)
        #expect(first.faces.count == 2 && first.faces.labels == [Emotion.happy.rawValue, Emotion.happy.rawValue])
        #expect(first.detected == 4 && first.cached == 0)
        let problems = Dictionary(uniqueKeysWithValues: first.problems.map { (($0.file as NSString).lastPathComponent, $0.problem) })
        #expect(problems == ["noface.png": "no face found", "two.jpg": "2 faces found"], "\(problems)")
        // Exactly what `fer predict` classifies: the same detector, framing and crop.
        let a = root + "/train/happy/a.jpg"
        let expected = analyzer.faceInputs(try analyzer.readPhoto(a))
        #expect(expected.count == 1 && Array(first.faces.image(0)) == expected.first)

        // A second run is answered by the cache, face for face.
        let second = try PhotoFaces.load(root + "/train", analyzer: analyzer, cacheFolder: cache)
        #expect(second.cached == 4 && second.detected == 0 && second.faces.images == first.faces.images && second.problems == first.problems)

        // A changed photo is detected again; the others still come from the cache.
        try Self.pasted(at: 380, 150).write(a)
        let changed = try PhotoFaces.load(root + "/train", analyzer: analyzer, cacheFolder: cache)
        #expect(changed.detected == 1 && changed.cached == 3)
        #expect(Array(changed.faces.image(0)) == analyzer.faceInputs(try analyzer.readPhoto(a)).first)
        #expect(Array(changed.faces.image(0)) != Array(first.faces.image(0)))

        // A damaged cache is reported and rebuilt, never trusted.
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: cache).first { $0.hasSuffix(".cache") })
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: cache + "/" + file)))
        bytes[bytes.count / 2] ^= 0x55
        try Data(bytes).write(to: URL(fileURLWithPath: cache + "/" + file))
        let rebuilt = try PhotoFaces.load(root + "/train", analyzer: analyzer, cacheFolder: cache)
        #expect(rebuilt.cacheProblem?.contains("checksum") == true && rebuilt.detected == 4 && rebuilt.faces.images == changed.faces.images)
        // So is one cut short, and one made with other settings is not used.
        try Data(bytes.prefix(40)).write(to: URL(fileURLWithPath: cache + "/" + file))
        #expect(try PhotoFaces.load(root + "/train", analyzer: analyzer, cacheFolder: cache).detected == 4)
        let key = PhotoFaces.cacheKey(analyzer)
        analyzer.reading.borderRetry = 0
        #expect(PhotoFaces.cacheKey(analyzer) != key)
    }

    @Test func cacheFileRoundTripsAndRejectsDamage() throws {
        let path = Paths.temporaryDirectory("kc") + "/c.cache"
        var c = KeyedCache(path: path, settings: "s1")
        c[42] = [1, 2, 3]
        c[7] = []
        try c.save()
        let back = KeyedCache(path: path, settings: "s1")
        #expect(back.entries == [42: [1, 2, 3], 7: []] && back.problem == nil)
        let other = KeyedCache(path: path, settings: "s2")
        #expect(other.entries.isEmpty && other.problem == "made with other settings")
        try Data("FERCACHE but not really".utf8).write(to: URL(fileURLWithPath: path))
        #expect(KeyedCache(path: path, settings: "s1").problem != nil)
    }

    @Test func mixedSamplingFollowsTheWeights() throws {
        let s = MixedSampling(parts: [.init(name: "big", start: 0, count: 1000, weight: 3), .init(name: "small", start: 1000, count: 50, weight: 1),
                                      .init(name: "off", start: 1050, count: 10, weight: 0)], epochSize: 400)
        #expect(s.problem == nil && s.quotas == [300, 100, 0])
        let e0 = s.order(seed: 1, epoch: 0)
        #expect(e0.count == 400 && e0 == s.order(seed: 1, epoch: 0) && e0 != s.order(seed: 1, epoch: 1))
        let small = e0.filter { $0 >= 1000 }
        #expect(small.count == 100 && small.allSatisfy { $0 < 1050 })
        // The small set drawn twice per epoch: every image exactly twice, none left behind.
        #expect(Dictionary(grouping: small, by: { $0 }).values.allSatisfy { $0.count == 2 } && Set(small).count == 50)
        // The big set is walked through without repeats (three epochs draw 900 different images),
        // and seen whole over four.
        let big = (0..<4).map { s.order(seed: 1, epoch: $0).filter { $0 < 1000 } }
        #expect(Set(big[0..<3].joined()).count == 900 && Set(big.joined()).count == 1000)
        #expect(MixedSampling(parts: [.init(name: "x", start: 0, count: 5, weight: -1)], epochSize: 10).problem != nil)
        #expect(MixedSampling(parts: [.init(name: "x", start: 0, count: 5, weight: 0)], epochSize: 10).problem != nil)
        // Quotas add up to the epoch whatever the rounding.
        let odd = MixedSampling(parts: [.init(name: "a", start: 0, count: 9, weight: 1), .init(name: "b", start: 9, count: 9, weight: 1),
                                        .init(name: "c", start: 18, count: 9, weight: 1)], epochSize: 100)
        #expect(odd.quotas.reduce(0, +) == 100 && odd.order(seed: 3, epoch: 5).count == 100)
    }

    @Test func classBalanceDrawsRareClassesMoreOften() throws {
        // Dataset a: 900 faces of class 0 and 100 of class 1, interleaved; b: 50 faces, all class 2.
        let labels = (0..<1000).map { $0 % 10 == 3 ? 1 : 0 } + [Int](repeating: 2, count: 50)
        let mix = MixedSampling(parts: [.init(name: "a", start: 0, count: 1000, weight: 3), .init(name: "b", start: 1000, count: 50, weight: 1)],
                                epochSize: 400)
        // Square-root sampling: a's 300 per epoch split 30:10 (sqrt 900 : sqrt 100); b keeps its 100.
        let root = mix.balancingClasses(0.5, labels: labels)
        #expect(root.problem == nil && root.quotas == [225, 75, 100], "\(root.quotas)")
        #expect(root.quotasByDataset.map(\.name) == ["a", "b"] && root.quotasByDataset.map(\.quota) == [300, 100])
        // Every class equally: a's classes 150 each, so each rare face is drawn 1.5 times an epoch
        // (every one once, half twice), and the draw stays inside its class and dataset.
        let even = mix.balancingClasses(1, labels: labels)
        #expect(even.quotas == [150, 150, 100])
        let order = even.order(seed: 4, epoch: 0)
        #expect(order.count == 400 && order == even.order(seed: 4, epoch: 0))
        let rare = order.filter { $0 < 1000 && labels[$0] == 1 }
        let counts = Dictionary(grouping: rare, by: { $0 }).values.map(\.count)
        #expect(rare.count == 150 && Set(rare).count == 100 && counts.allSatisfy { $0 == 1 || $0 == 2 })
        #expect(order.filter { $0 >= 1000 }.count == 100)
        // Over two epochs every rare face is drawn exactly three times (the permutations carry on).
        let twoEpochs = (0..<2).flatMap { even.order(seed: 4, epoch: $0) }.filter { $0 < 1000 && labels[$0] == 1 }
        #expect(Dictionary(grouping: twoEpochs, by: { $0 }).values.allSatisfy { $0.count == 3 })
        // Near 0 the data's own shares come back.
        #expect(mix.balancingClasses(1e-9, labels: labels).quotas == [270, 30, 100])
    }

    @Test func classBalanceIsAValidatedTrainingOption() throws {
        var c = TrainConfig()
        for bad in [0, -0.5, 1.5, Double.nan] {
            c.classBalance = bad
            #expect(throws: TrainingError.self) { try c.validate() }
        }
        c.classBalance = 0.5
        try c.validate()
        // Without --mix each source keeps its size's share, then its classes are balanced.
        let faces = FaceDataset(side: 1, images: [UInt8](repeating: 0, count: 8), labels: [0, 0, 0, 1, 0, 0, 0, 1], classNames: ["x", "y"])
        let data = Trainer.TrainingData(train: faces, parts: [("a", 0..<4), ("b", 4..<8)], validations: [])
        c.classBalance = 1
        let s = try #require(data.sampling(c))
        #expect(s.epochSize == 8 && s.quotas == [2, 2, 2, 2])
        let prior = data.classPrior(s)
        #expect(abs(prior[0] - 0.5) < 1e-6 && abs(prior[1] - 0.5) < 1e-6, "\(prior)")
        c.classBalance = nil
        #expect(data.sampling(c) == nil)
    }

    @Test func concatenatedKeepsTargetsAndLabels() throws {
        var a = FaceDataset(side: 2, images: [1, 2, 3, 4], labels: [3], classNames: ["x", "y", "z", "w"])
        a.targets = [0, 0, 0.5, 0.5]
        let b = FaceDataset(side: 2, images: [5, 6, 7, 8], labels: [1], classNames: ["x", "y", "z", "w"])
        let j = try FaceDataset.concatenated([a, b])
        #expect(j.count == 2 && j.labels == [3, 1] && j.images == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(j.targets == [0, 0, 0.5, 0.5, 0, 1, 0, 0])
        #expect(throws: DataError.self) { _ = try FaceDataset.concatenated([a, FaceDataset(side: 3, images: .init(repeating: 0, count: 9), labels: [0], classNames: ["x", "y", "z", "w"])]) }
    }

    /// A profile picture: the face fills the frame, so MTCNN has no border and finds nothing; the
    /// second search inside a border finds it, with its box inside the photo.
    @Test func faceFillingThePhotoIsFound() throws {
        let portrait = try Image.read(Self.photo, channels: 3)
        // The portrait's face spans about x 177-266, y 63-174; cut a square inside it, as tight web crops are.
        let tight = portrait.cropped(FaceBox(x: 186, y: 84, width: 76, height: 76)).resized(width: 256, height: 256)
        let analyzer = try Self.analyzer()
        let photo = ScaledImage(image: tight, originalWidth: 256, originalHeight: 256)
        analyzer.reading.borderRetry = 0
        #expect(analyzer.detect(photo).isEmpty, "the detector found the tight face without a border: the test no longer shows the problem")
        analyzer.reading.borderRetry = FaceReading().borderRetry
        let faces = analyzer.detect(photo)
        #expect(faces.count == 1)
        if let f = faces.first {
            #expect(f.x >= 0 && f.y >= 0 && f.x + f.width <= 256 && f.y + f.height <= 256 && f.width > 150, "\(f)")
        }
        // No new faces where there are none: a plain picture still has none.
        var plain = Image(width: 256, height: 256, channels: 3, fill: 120)
        plain.rectangle(60, 60, 100, 80, (20, 200, 20), thickness: -1)
        #expect(analyzer.detect(ScaledImage(image: plain, originalWidth: 256, originalHeight: 256)).isEmpty)
    }

    /// `fer train` on FER2013 (a synthetic CSV) and a photo folder, mixed with weights: both
    /// validated every epoch, the rule and the weights in config.json, skipped photos listed.
    @Test func trainCommandMixesFER2013AndPhotos() throws {
        let root = try Self.makeFolder(), cache = Paths.temporaryDirectory("facecache"), out = Paths.temporaryDirectory("mixrun")
        let csv = try Self.syntheticCSV()
        let args = ["train", "--data", csv, "--photos", root, "--mix", "synthetic=1", "--mix", "\((root as NSString).lastPathComponent)=1",
                    "--epoch-size", "32", "--batch-size", "16", "--preset", "cnn", "--width", "8", "--epochs", "2", "--face-cache", cache,
                    "--out", out + "/run", "--quiet"]
        let r = try run(Paths.ferBinary, args)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("2 of 4 photos left out (1 no face, 1 several faces)"), "\(r.stderr)")
        #expect(r.stderr.contains("best epoch: by the mean validation accuracy"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run/config.json"))) as? [String: Any]
        #expect(config?["selectOn"] as? String == "mean" && (config?["mix"] as? [String: Double])?.count == 2 && config?["photoPipeline"] != nil)
        let lines = try String(contentsOfFile: out + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let record = try JSONDecoder().decode(EpochRecord.self, from: Data(lines[0].utf8))
        #expect(Set(record.validationSets?.keys.map { $0 } ?? []) == ["synthetic", (root as NSString).lastPathComponent])
        let skipped = try JSONDecoder().decode([PhotoFaces.Problem].self, from: Data(contentsOf: URL(fileURLWithPath: out + "/run/photos-skipped.json")))
        #expect(skipped.count == 2)
        // A second run finds every photo in the cache.
        let again = try run(Paths.ferBinary, args.dropLast(3) + ["--out", out + "/run2", "--quiet"])
        #expect(again.status == 0 && again.stderr.contains("4 from the face cache, 0 detected"), "\(again.stderr)")
        // Names that are not datasets of the run are refused before any work.
        let bad = try run(Paths.ferBinary, ["train", "--data", csv, "--photos", root, "--mix", "fer=1", "--out", out + "/bad"])
        #expect(bad.status != 0 && bad.stderr.contains("--mix names fer"), "\(bad.stderr)")
    }

    /// `fer calibrate prior` on PublicTest and a photo folder's faces: both sets scored before and
    /// after, the offsets in the written model's card, the input model untouched.
    @Test func priorFittedOnPublicTestAndPhotos() throws {
        let root = try Self.makeFolder(), cache = Paths.temporaryDirectory("facecache"), out = Paths.temporaryDirectory("prior") + "/m.safetensors"
        try FileManager.default.copyItem(atPath: root + "/train/happy/a.jpg", toPath: root + "/val/happy/a.jpg")  // val/: two faces
        let model = BundledTestModels.model("fast")
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        let r = try run(Paths.ferBinary, ["calibrate", "prior", "--data", try Self.syntheticCSV(), "--photos", root, "--objective", "mean-recall",
                                          "--min-class-faces", "1", "--model", "fast", "--face-cache", cache, "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let name = (root as NSString).lastPathComponent
        #expect(r.stdout.contains("PublicTest: accuracy") && r.stdout.contains("\(name)/val: accuracy") && r.stdout.contains("2 faces"), "\(r.stdout)")
        #expect(r.stderr.contains("\(name)/val: 2 photos, 2 faces"), "\(r.stderr)")
        let card = try Checkpoint.load(out).1
        #expect(card.metrics["prior_offset_Happy"] != nil && card.metrics.keys.contains { $0.hasSuffix("_val_mean_recall_after_prior") }, "\(card.metrics.keys.sorted())")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == before)
        let none = try run(Paths.ferBinary, ["calibrate", "prior", "--model", "fast", "--out", out + "2.safetensors"])
        #expect(none.status != 0 && none.stderr.contains("--data (PublicTest), --photos DIR"), "\(none.stderr)")
    }

    static func syntheticCSV() throws -> String {
        let dir = Paths.temporaryDirectory("csv")
        var rng = SplitMix64(seed: 9)
        var rows: [(String, String, String)] = []
        for i in 0..<96 {
            let px = (0..<2304).map { _ in String(min(255, (i % 7) * 30 + Int(rng.unit() * 60))) }.joined(separator: " ")
            rows.append((String(i % 7), px, i < 64 ? "Training" : "PublicTest"))
        }
        writeCSV(dir + "/synthetic.csv", rows: rows)
        return dir + "/synthetic.csv"
    }
}

/// Issue 37: a face cache is data from disk like any other, and a cache is never worth a run.
@Suite("Face cache under hostile files", .serialized) struct FaceCacheHardeningTests {
    /// ROOT/happy/a.jpg: one face.
    static func folder() throws -> String {
        let root = Paths.temporaryDirectory("cache-hostile")
        try FileManager.default.createDirectory(atPath: root + "/happy", withIntermediateDirectories: true)
        try PhotoTrainingTests.pasted(at: 300, 120).write(root + "/happy/a.jpg")
        return root
    }

    /// Records with a valid checksum whose sizes contradict the face count they declare (a face with
    /// no pixels, a face cut short, "no face" with pixels, nothing at all) are detected again: no
    /// crash (a face without pixels was a SIGILL), no face count that disagrees with the pixels.
    @Test func recordsAreCheckedAgainstTheirDeclaredSizes() throws {
        let root = try Self.folder(), analyzer = try PhotoTrainingTests.analyzer()
        let side = analyzer.classifier.sourceSide
        let hash = contentHash(try Data(contentsOf: URL(fileURLWithPath: root + "/happy/a.jpg")))
        for hostile: [UInt8] in [[1], [1] + [UInt8](repeating: 9, count: side * side - 1), [0, 7], [], [2] + [UInt8](repeating: 9, count: side * side)] {
            let cacheFolder = Paths.temporaryDirectory("cache-hostile-c")
            let key = PhotoFaces.cacheKey(analyzer)
            var cache = KeyedCache(path: PhotoFaces.cachePath(folder: root, key: key, in: cacheFolder), settings: key)
            cache[hash] = hostile
            try cache.save()
            let set = try PhotoFaces.load(root, analyzer: analyzer, cacheFolder: cacheFolder)
            #expect(set.detected == 1 && set.cached == 0, "record of \(hostile.count) bytes")
            #expect(set.faces.count == 1 && set.faces.images.count == side * side)
        }
    }

    /// `fer train` refused because OUT holds a run writes nothing there (it replaced the run's
    /// photos-skipped.json after detecting every photo).
    @Test func aRefusedRunWritesNothing() throws {
        let root = try Self.folder(), out = Paths.temporaryDirectory("refused")
        let csv = try PhotoTrainingTests.syntheticCSV()
        try Data("a run's file".utf8).write(to: URL(fileURLWithPath: out + "/last.safetensors"))
        try Data("[\"theirs\"]".utf8).write(to: URL(fileURLWithPath: out + "/photos-skipped.json"))
        let r = try run(Paths.ferBinary, ["train", "--data", csv, "--photos", root, "--out", out, "--epochs", "1", "--no-face-cache", "--quiet"])
        #expect(r.status != 0 && r.stderr.contains("already holds a run"), "\(r.stderr)")
        #expect(try String(contentsOfFile: out + "/photos-skipped.json", encoding: .utf8) == "[\"theirs\"]")
        #expect(!r.stderr.contains("faces"), "no photo should be detected: \(r.stderr)")
    }

    /// `--resume` after photos were relabelled: refused, saying what changed, unless --force.
    @Test func resumeSaysWhatPhotosChanged() throws {
        let root = try PhotoTrainingTests.makeFolder(), out = Paths.temporaryDirectory("resume-photos") + "/run"
        let csv = try PhotoTrainingTests.syntheticCSV()
        let common = ["train", "--data", csv, "--photos", root, "--preset", "cnn", "--width", "8", "--batch-size", "16",
                      "--no-face-cache", "--out", out, "--quiet"]
        let first = try run(Paths.ferBinary, common + ["--epochs", "1"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: out + "/photos.json"))
        try FileManager.default.moveItem(atPath: root + "/train/happy/b.png", toPath: root + "/train/neutral/b.png")
        let refused = try run(Paths.ferBinary, common + ["--epochs", "2", "--resume"])
        #expect(refused.status != 0 && refused.stderr.contains("photos changed") && refused.stderr.contains("happy -> neutral"), "\(refused.stderr)")
        let forced = try run(Paths.ferBinary, common + ["--epochs", "2", "--resume", "--force"])
        #expect(forced.status == 0 && forced.stderr.contains("resuming on changed photos"), "\(forced.stderr)")
        let again = try run(Paths.ferBinary, common + ["--epochs", "3", "--resume"])  // the new set is the run's now
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// A cache folder that cannot be written (under a regular file) costs the cache, not the run.
    @Test func anUnwritableCacheIsAWarningAndTheFacesAreAllThere() throws {
        let root = try Self.folder(), analyzer = try PhotoTrainingTests.analyzer()
        let file = Paths.temporaryDirectory("cache-file") + "/plain"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let set = try PhotoFaces.load(root, analyzer: analyzer, cacheFolder: file + "/cache")
        #expect(set.faces.count == 1 && set.detected == 1)
        #expect(set.cacheWriteProblem?.contains("cannot create the folder") == true, "\(set.cacheWriteProblem ?? "no problem")")
    }
}
