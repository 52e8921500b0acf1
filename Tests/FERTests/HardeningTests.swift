import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FERIO
@testable import FERModels
@testable import FERTraining

/// What a run accepts from files it did not write itself: a saved trainer state, a model to start
/// from, a teacher; each is checked, never trusted.
@Suite("Model and state checks", .serialized) struct ModelChecksTests {
    static func csv() -> String {
        let dir = Paths.temporaryDirectory("checks")
        var rng = SplitMix64(seed: 4)
        writeCSV(dir + "/d.csv", rows: (0..<80).map { i in
            (String(i % 7), (0..<2304).map { _ in String(min(255, (i % 7) * 30 + Int(rng.unit() * 60))) }.joined(separator: " "), i < 64 ? "Training" : "PublicTest")
        })
        return dir + "/d.csv"
    }

    static func config(_ data: String) -> TrainConfig {
        var c = TrainConfig()
        c.data = data; c.preset = .cnn; c.width = 4; c.inputSize = 24; c.epochs = 2; c.batchSize = 16
        return c
    }

    static func quiet(_ t: Trainer) -> Trainer { t.showProgress = false; t.say = { _ in }; return t }

    @Test func resumeRefusesADamagedOrOverrunState() throws {
        let data = Self.csv(), out = Paths.temporaryDirectory("resume")
        _ = try Self.quiet(Trainer(config: Self.config(data), outDir: out)).run()
        // Fewer epochs than the run has done: an error, not a run that does nothing.
        var fewer = Self.config(data)
        fewer.epochs = 1
        #expect { _ = try Self.quiet(Trainer(config: fewer, outDir: out)).run(resume: true) } throws: { "\($0)".contains("more than the 1 asked for") }
        // A trainer state with a negative step.
        var st = try SafeTensors.read(out + "/last.safetensors")
        let state = try #require(st.metadata["trainer-state"])
        st.metadata["trainer-state"] = state.replacingOccurrences(of: "\"stepInEpoch\":0", with: "\"stepInEpoch\":-3")
        #expect(st.metadata["trainer-state"] != state)
        try st.write(out + "/last.safetensors")
        var more = Self.config(data)
        more.epochs = 3
        #expect { _ = try Self.quiet(Trainer(config: more, outDir: out)).run(resume: true) } throws: { "\($0)".contains("damaged") }
    }

    @Test func aModelWithOtherClassesIsRefused() throws {
        let data = Self.csv(), dir = Paths.temporaryDirectory("perm")
        let spec = Self.config(data).modelSpec
        // The same network, its classes listed in another order: every shape matches, the labels would not.
        let permuted = dir + "/permuted.safetensors"
        let names = Array(Emotion.names.reversed())
        try Checkpoint.save(Classifier(spec: spec, classNames: names), card: ModelCard(spec: spec, classNames: names), to: permuted)
        var c = Self.config(data)
        c.initFrom = permuted
        #expect { _ = try Self.quiet(Trainer(config: c, outDir: dir + "/a")).run() } throws: { "\($0)".contains("its classes are Neutral") }
        var t = Self.config(data)
        t.teachers = [permuted]
        #expect { _ = try Trainer.datasets(t) } throws: { "\($0)".contains("teacher") && "\($0)".contains("its classes are") }
        // The same classes in the same order are fine.
        let same = dir + "/same.safetensors"
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: same)
        c.initFrom = same
        #expect(try Self.quiet(Trainer(config: c, outDir: dir + "/b")).run().epochsCompleted == 2)
    }

    @Test func calibratePriorNeedsTwoPublicTestFaces() throws {
        let dir = Paths.temporaryDirectory("prior")
        writeCSV(dir + "/one.csv", rows: [("3", pixelString(value: 90), "Training"), ("3", pixelString(value: 100), "PublicTest")])
        let r = try run(Paths.ferBinary, ["calibrate", "prior", "--data", dir + "/one.csv", "--model", "fast", "--out", dir + "/o.safetensors"])
        #expect(r.status == 1 && r.stderr.contains("at least 2 PublicTest faces"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.safetensors"))
    }
}

/// One naming rule for every writer: inputs that share a file name get distinct outputs, and no
/// output is ever written over an input.
@Suite("Output names") struct OutputNamesTests {
    @Test func stemsAreUniqueInInputOrder() {
        #expect(OutputNames.stems(["a/in.avi", "b/in.avi", "c/in.mp4", "d/other.png", "e/IN.jpg"]) == ["in", "in-2", "in-3", "other", "IN-4"])
    }

    @Test func predictKeepsEveryOutputAndNeverOverwritesAnInput() throws {
        let dir = Paths.temporaryDirectory("names")
        let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
        for sub in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: photo, toPath: dir + "/\(sub)/in.png")
        }
        let r = try run(Paths.ferBinary, ["predict", dir + "/a/in.png", dir + "/b/in.png", "--annotate", dir + "/out", "--crops", dir + "/crops"])
        #expect(r.status == 0, "\(r.stderr)")
        let annotated = try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted()
        #expect(annotated == ["in-2.annotated.png", "in.annotated.png"], "\(annotated)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/crops").sorted() == ["in-2.face1.png", "in.face1.png"])
        // A crop named like an input in the same folder: refused, the input untouched.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/in.png"))
        try before.write(to: URL(fileURLWithPath: dir + "/a/in.face1.png"))
        let clash = try run(Paths.ferBinary, ["predict", dir + "/a", "--crops", dir + "/a"])
        #expect(clash.status == 1 && clash.stdout.contains("would overwrite an input"), "\(clash.stdout) \(clash.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/in.face1.png")) == before)
    }
}

/// Damaged and disagreeing images: a JPEG cut short is an error naming the file, sizes follow the
/// pixels actually decoded, and a pixel limit holds in every command.
@Suite("Damaged images", .serialized) struct DamagedImageTests {
    static func jpeg() throws -> [UInt8] {
        var pixels = [UInt8](repeating: 30, count: 1400 * 1000)
        for y in 0..<1000 { for x in 1000..<1400 { pixels[y * 1400 + x] = 220 } }
        return try Image(width: 1400, height: 1000, channels: 1, pixels: pixels).encoded(".jpg")
    }

    @Test func aJPEGCutShortIsAnError() throws {
        let whole = try Self.jpeg()
        #expect(ImageHeader.truncation(whole) == nil)
        #expect(ImageHeader.truncation(whole + [0, 0, 0]) == nil)  // padding after the end marker is fine
        let half = Array(whole.prefix(whole.count / 2))
        #expect(ImageHeader.truncation(half) != nil)
        #expect { _ = try ScaledImage.decode(half, channels: 3, minSide: 640, name: "half.jpg") } throws: { "\($0)".contains("half.jpg") && "\($0)".contains("cut short") }
        let dir = Paths.temporaryDirectory("cut")
        try Data(half).write(to: URL(fileURLWithPath: dir + "/half.jpg"))
        let r = try run(Paths.ferBinary, ["predict", dir + "/half.jpg"])
        #expect(r.status == 1 && r.stdout.contains("half.jpg") && r.stdout.contains("cut short"), "\(r.stdout) \(r.stderr)")
        // evaluate --photos: listed apart, not counted as a wrong answer.
        try FileManager.default.createDirectory(atPath: dir + "/set/happy/nested", withIntermediateDirectories: true)
        try Data(half).write(to: URL(fileURLWithPath: dir + "/set/happy/half.jpg"))
        try FileManager.default.copyItem(atPath: (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png"), toPath: dir + "/set/happy/nested/a.png")
        let e = try run(Paths.ferBinary, ["evaluate", "--photos", dir + "/set", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        let photos = json?["photos"] as? [[String: Any]] ?? []
        #expect(photos.count == 2 && json?["accuracy"] as? Double == 1, "the photo in a nested folder counts, the cut one does not: \(e.stdout)")
        #expect(photos.contains { $0["readable"] as? Bool == false && ($0["file"] as? String ?? "").hasSuffix("half.jpg") })
    }

    /// An orientation tag the header reader and the decoder read differently (typed LONG instead of
    /// SHORT): the size reported is the decoded pixels', so boxes stay inside the picture.
    @Test func sizesFollowTheDecodedPixels() throws {
        let tiff: [UInt8] = Array("MM".utf8) + [0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 4, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0]
        let app1 = Array("Exif".utf8) + [0, 0] + tiff
        let base = try Self.jpeg()
        let jpeg = Array(base.prefix(2)) + [0xFF, 0xE1, UInt8((app1.count + 2) >> 8), UInt8((app1.count + 2) & 0xFF)] + app1 + Array(base.dropFirst(2))
        for minSide in [0, 640] {
            let s = try ScaledImage.decode(jpeg, channels: 3, minSide: minSide)
            let k = Double(s.originalWidth) / Double(s.image.width)
            #expect(abs(Double(s.originalHeight) / Double(s.image.height) - k) < 0.01, "\(s.originalWidth)x\(s.originalHeight) for \(s.image.width)x\(s.image.height)")
        }
    }

    @Test func predictHasAPixelLimit() throws {
        let dir = Paths.temporaryDirectory("pixels")
        try Image(width: 400, height: 300, channels: 1, fill: 0).write(dir + "/big.png")
        let r = try run(Paths.ferBinary, ["predict", dir + "/big.png", "--max-pixels", "100000"])
        #expect(r.status == 1 && r.stdout.contains("400x300") && r.stdout.contains("--max-pixels"), "\(r.stdout)")
        let ok = try run(Paths.ferBinary, ["predict", dir + "/big.png"])
        #expect(ok.status == 0, "\(ok.stdout) \(ok.stderr)")
    }
}

/// Commands that write a model they read keep what the file carries: storage, int8 ranges, the
/// fitted temperature (unless the weights changed so that they no longer hold).
@Suite("Writing models", .serialized) struct WritingModelsTests {
    static let bundled = BundledTestModels.model("default")
    static let fast = BundledTestModels.model("fast")

    @Test func derivedModelsKeepWhatTheFileCarries() throws {
        let dir = Paths.temporaryDirectory("derived")
        let source = try SafeTensors.read(Self.bundled)
        let ranges = try #require(source[Classifier.int8RangesTensor]?.values, "the bundled model carries int8 ranges")
        let e = try run(Paths.ferBinary, ["export", "default", dir + "/e.safetensors"])
        #expect(e.status == 0, "\(e.stderr)")
        let exported = try SafeTensors.read(dir + "/e.safetensors")
        #expect(exported[Classifier.int8RangesTensor]?.values == ranges && exported.storedAs == source.storedAs)

        writeCSV(dir + "/f.csv", rows: (0..<14).map { ("\($0 % 7)", pixelString(value: 20 + 15 * $0), "PublicTest") })
        let p = try run(Paths.ferBinary, ["calibrate", "prior", "--data", dir + "/f.csv", "--model", "default", "--out", dir + "/p.safetensors"])
        #expect(p.status == 0, "\(p.stderr)")
        let prior = try SafeTensors.read(dir + "/p.safetensors")
        #expect(prior[Classifier.int8RangesTensor]?.values == ranges && prior.storedAs == source.storedAs)

        // A soup of two copies of the fast model keeps its temperature; one Training face cannot refresh batch norm.
        let fastCard = try Checkpoint.load(Self.fast).1
        try FileManager.default.copyItem(atPath: Self.fast, toPath: dir + "/fast2.safetensors")
        let s = try run(Paths.ferBinary, ["soup", Self.fast, dir + "/fast2.safetensors", "--out", dir + "/s.safetensors"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try Checkpoint.load(dir + "/s.safetensors").1.temperature == fastCard.temperature && fastCard.temperature != nil)
        writeCSV(dir + "/one.csv", rows: [("3", pixelString(value: 90), "Training"), ("3", pixelString(value: 100), "PublicTest")])
        let one = try run(Paths.ferBinary, ["soup", Self.fast, dir + "/fast2.safetensors", "--refresh-batch-norm", "--data", dir + "/one.csv", "--out", dir + "/r.safetensors"])
        #expect(one.status == 1 && one.stderr.contains("at least 2"), "\(one.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/r.safetensors"))
    }
}
