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

/// End-to-end: run the `fer` binary as a user would.
@Suite("fer command line", .serialized) struct CLITests {
    let fer = Paths.ferBinary

    @Test func listsModels() throws {
        let r = try run(fer, ["models", "--json"])
        #expect(r.status == 0)
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = try #require(out["presets"] as? [[String: Any]])
        #expect(rows.map { $0["preset"] as? String } == ["mlp", "cnn", "vgg", "resnet"])
        let cnn = rows[1]
        #expect(cnn["multiplyAdds"] as? Int == 85_990_784)
        #expect(cnn["parameters"] as? Int == 288_231)
        let bundled = try #require(out["bundled"] as? [[String: Any]])
        #expect(bundled.map { $0["name"] as? String } == ["default", "fast", "fer2013"])
    }

    @Test func trainEvaluatePredict() throws {
        let dir = Paths.temporaryDirectory("cli")
        // A tiny synthetic data set in the image-folder layout (bright = happy, dark = sad).
        for (split, n) in [("train", 24), ("val", 8), ("test", 8)] {
            for (emotion, base) in [("happy", 200), ("sad", 40)] {
                let d = "\(dir)/faces/\(split)/\(emotion)"
                try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
                for i in 0..<n { try Image(width: 48, height: 48, channels: 1, fill: UInt8(base + i)).write("\(d)/\(i).png") }
            }
        }
        let out = dir + "/run"
        let t = try run(fer, ["train", "--data", dir + "/faces", "--out", out, "--preset", "cnn", "--width", "8",
                              "--input-size", "32", "--epochs", "3", "--batch-size", "8", "--lr", "3e-3", "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("finished after 3 epochs"))
        for f in ["best.safetensors", "last.safetensors", "metrics.jsonl", "curves.png", "config.json"] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(f)"), "missing \(f)")
        }
        let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 3)

        let e = try run(fer, ["evaluate", "--model", out + "/best.safetensors", "--data", dir + "/faces", "--split", "PrivateTest",
                              "--json", "--confusion", dir + "/cm.png", "--reliability", dir + "/rel.png"])
        #expect(e.status == 0, "\(e.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any]
        let acc = (report["report"] as! [String: Any])["accuracy"] as! Double
        #expect(acc > 0.9, "accuracy \(acc) on an easy two-class set")
        #expect(FileManager.default.fileExists(atPath: dir + "/cm.png"))
        #expect(try Image.read(dir + "/rel.png", channels: 3).width == 530)
        #expect((report["calibrationError"] as? Double).map { $0 >= 0 && $0 <= 1 } == true)

        let p = try run(fer, ["predict", "--model", out + "/best.safetensors", "--json", dir + "/faces/test/happy/0.png"])
        #expect(p.status == 0, "\(p.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [[String: Any]]
        let face = (rows[0]["faces"] as! [[String: Any]])[0]
        #expect(face["emotion"] as? String == "Happy")
    }

    @Test func recipeSetsTheRunAndOptionsGivenOverrideIt() throws {
        let dir = Paths.temporaryDirectory("recipe")
        for (emotion, base) in [("happy", 200), ("sad", 40)] {
            for split in ["train", "val"] {
                let d = "\(dir)/faces/\(split)/\(emotion)"
                try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
                for i in 0..<4 { try Image(width: 48, height: 48, channels: 1, fill: UInt8(base + i)).write("\(d)/\(i).png") }
            }
        }
        let t = try run(fer, ["train", "--recipe", "fast", "--data", dir + "/faces", "--out", dir + "/run", "--epochs", "1",
                              "--batch-size", "4", "--lr", "0.005", "--rotation", "0", "--ema", "0.99", "--quiet"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stderr.contains("recipe: fast"))
        let saved = try JSONDecoder().decode(TrainConfig.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/run/config.json")))
        var expected = TrainRecipe.fast.config
        expected.data = dir + "/faces"
        expected.epochs = 1
        expected.batchSize = 4
        expected.optimizer.learningRate = 0.005
        expected.augmentation.rotation = 0
        expected.ema = 0.99
        expected.ferplusMode = .majority  // no --ferplus: the recipe's blend has no votes to blend
        expected.ferplusWeight = nil
        // What the run adds: the arithmetic measured at start-up and this machine's threads.
        expected.precision = saved.precision
        expected.precisionChoice = saved.precisionChoice
        expected.threads = saved.threads
        #expect(saved == expected)
        let bad = try run(fer, ["train", "--recipe", "slow", "--data", dir + "/faces", "--out", dir + "/bad"])
        #expect(bad.status != 0 && bad.stderr.contains("slow"))
        let badDecay = try run(fer, ["train", "--recipe", "fast", "--data", dir + "/faces", "--out", dir + "/bad", "--ema", "1"])
        #expect(badDecay.status != 0 && badDecay.stderr.contains("--ema"), "\(badDecay.stderr)")
    }

    /// `--without-training-duplicates` leaves out exactly the test faces whose pixels are in Training.
    @Test func evaluateLeavesOutTrainingDuplicates() throws {
        let dir = Paths.temporaryDirectory("dups")
        let spec = ModelSpec(preset: .cnn, width: 8)
        let model = dir + "/m.safetensors"
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: model)
        writeCSV(dir + "/f.csv", rows: [("0", pixelString(value: 10), "Training"), ("1", pixelString(value: 20), "Training"),
                                        ("0", pixelString(value: 10), "PrivateTest"), ("2", pixelString(value: 30), "PrivateTest"),
                                        ("3", pixelString(value: 40), "PrivateTest")])
        let r = try run(Paths.ferBinary, ["evaluate", "--data", dir + "/f.csv", "--model", model, "--without-training-duplicates", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["trainingDuplicatesLeftOut"] as? Int == 1)
        #expect(((json?["report"] as? [String: Any])?["classes"] as? [[String: Any]])?.compactMap { $0["support"] as? Int }.reduce(0, +) == 2)
        let onTraining = try run(Paths.ferBinary, ["evaluate", "--data", dir + "/f.csv", "--model", model, "--split", "Training", "--without-training-duplicates"])
        #expect(onTraining.status != 0 && onTraining.stderr.contains("PublicTest or PrivateTest"))
    }

    /// `fer soup` writes the averaged model with its ingredients on the card, and refuses what it cannot do.
    @Test func soupAveragesModelsAndRefusesMismatches() throws {
        let dir = Paths.temporaryDirectory("soup-cli")
        let spec = ModelSpec(preset: .cnn, width: 8)
        let a = dir + "/a.safetensors", b = dir + "/b.safetensors", narrow = dir + "/narrow.safetensors"
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: a)
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: b)
        let small = ModelSpec(preset: .cnn, width: 4)
        try Checkpoint.save(Classifier(spec: small), card: ModelCard(spec: small, classNames: Emotion.names), to: narrow)
        writeCSV(dir + "/f.csv", rows: [("0", pixelString(value: 10), "Training"), ("1", pixelString(value: 20), "Training"),
                                        ("3", pixelString(value: 40), "PublicTest"), ("2", pixelString(value: 30), "PublicTest")])

        let r = try run(fer, ["soup", a, b, "--data", dir + "/f.csv", "--greedy", "--out", dir + "/soup.safetensors", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((json?["steps"] as? [Any])?.count == 2)
        #expect(json?["publicTestAccuracy"] is Double)
        let (_, card, _) = try Checkpoint.load(dir + "/soup.safetensors")
        #expect(card.soup?.isEmpty == false && card.soup?.allSatisfy { [a, b].contains($0) } == true)

        let mismatch = try run(fer, ["soup", a, narrow, "--out", dir + "/x.safetensors"])
        #expect(mismatch.status != 0 && mismatch.stderr.contains("architectures differ"), "\(mismatch.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
        let overwrite = try run(fer, ["soup", a, b, "--out", a])
        #expect(overwrite.status != 0 && overwrite.stderr.contains("refusing to overwrite"))
        let one = try run(fer, ["soup", a, "--out", dir + "/y.safetensors"])
        #expect(one.status != 0 && one.stderr.contains("at least two"))
        let greedyWithoutData = try run(fer, ["soup", a, b, "--greedy", "--out", dir + "/z.safetensors"])
        #expect(greedyWithoutData.status != 0 && greedyWithoutData.stderr.contains("need --data"))
        let weighted = try run(fer, ["soup", a, b, "--weights", "3", "1", "--out", dir + "/w.safetensors"])
        #expect(weighted.status == 0, "\(weighted.stderr)")
        #expect(try Checkpoint.load(dir + "/w.safetensors").1.soupWeights == [0.75, 0.25])
        let wrongCount = try run(fer, ["soup", a, b, "--weights", "1", "--out", dir + "/v.safetensors"])
        #expect(wrongCount.status != 0 && wrongCount.stderr.contains("1 weights for 2 models"), "\(wrongCount.stderr)")
        let withGreedy = try run(fer, ["soup", a, b, "--weights", "1", "1", "--greedy", "--data", dir + "/f.csv", "--out", dir + "/v.safetensors"])
        #expect(withGreedy.status != 0 && withGreedy.stderr.contains("exclude each other"))
    }

    /// `fer calibrate-temperature` writes the same weights, storage and int8 ranges with a temperature
    /// on the card; the temperature changes confidences, never the predicted class.
    @Test func calibrateTemperatureKeepsTheFileAndChangesOnlyConfidence() throws {
        let dir = Paths.temporaryDirectory("temperature")
        let spec = ModelSpec(preset: .cnn, width: 8)
        let model = dir + "/m.safetensors", out = dir + "/t.safetensors"
        var extra = SafeTensors()
        extra.add(Classifier.int8RangesTensor, shape: [3], values: [1, 2, 3])
        try Checkpoint.save(Classifier(spec: spec, seed: 4), card: ModelCard(spec: spec, classNames: Emotion.names), to: model, extra: extra, half: true)
        var rows: [(String, String, String)] = []
        for i in 0..<40 { rows.append(("\(i % 7)", pixelString(value: (i * 37) % 256), i < 20 ? "Training" : "PublicTest")) }
        writeCSV(dir + "/f.csv", rows: rows)

        let r = try run(fer, ["calibrate", "temperature", "--data", dir + "/f.csv", "--model", model, "--precision", "fp32", "--out", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let t = try #require(json["temperature"] as? Double)
        let (calibrated, card, st) = try Checkpoint.load(out)
        #expect(abs(Double(card.temperature ?? 0) - t) < 1e-5 && calibrated.temperature == card.temperature)
        #expect(st.storedAs == .f16 && st[Classifier.int8RangesTensor]?.values == [1, 2, 3])
        let (original, _, _) = try Checkpoint.load(model)
        let face = [[UInt8]((0..<2304).map { UInt8($0 % 251) })]
        let a = original.classify(faces: face)[0], b = calibrated.classify(faces: face)[0]
        #expect(argmax(a) == argmax(b))
        if abs(t - 1) > 0.01 { #expect(zip(a, b).contains { abs($0 - $1) > 1e-4 }) }

        let overwrite = try run(fer, ["calibrate", "temperature", "--data", dir + "/f.csv", "--model", model, "--out", model])
        #expect(overwrite.status != 0 && overwrite.stderr.contains("refusing to overwrite"))
        // A card with a nonsense temperature is a clear error when loaded.
        var bad = card
        bad.temperature = 0
        try Checkpoint.save(original, card: bad, to: dir + "/bad.safetensors")
        let loaded = try run(fer, ["predict", "--model", dir + "/bad.safetensors", "--crop", dir + "/f.csv"])
        #expect(loaded.status != 0 && loaded.stderr.contains("temperature 0.0 is outside"), "\(loaded.stderr)")
    }

    @Test func predictReportsBadFilesAndFails() throws {
        let dir = Paths.temporaryDirectory("bad")
        _ = FileManager.default.createFile(atPath: dir + "/broken.png", contents: Data("garbage".utf8))
        let model = Paths.temporaryDirectory("m") + "/m.safetensors"
        try Checkpoint.save(Classifier(spec: ModelSpec(preset: .cnn, width: 8)), card: ModelCard(spec: ModelSpec(preset: .cnn, width: 8), classNames: Emotion.names), to: model)
        let r = try run(fer, ["predict", "--model", model, dir + "/broken.png", dir + "/missing.png"])
        #expect(r.status != 0)
        #expect(r.stdout.contains("broken.png: error:"))
        #expect(r.stdout.contains("missing.png: error:") && r.stdout.contains("no such file"))
    }

    @Test func missingDataIsAClearError() throws {
        let r = try run(fer, ["train", "--data", "/nonexistent/fer2013.csv", "--out", Paths.temporaryDirectory("x")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("error: /nonexistent/fer2013.csv: no such file"))
    }

    @Test func badOptionsAreRejected() throws {
        let r = try run(fer, ["train", "--data", "x", "--out", "y", "--input-size", "64"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("input size must be between 16 and 48"))
    }

    /// The README's main job: the bundled model on the bundled photo.
    @Test func demoRunsOnTheBundledModel() throws {
        let out = Paths.temporaryDirectory("demo") + "/astronaut.png"
        let r = try run(fer, ["demo", "--json", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        let faces = rows[0]["faces"] as! [[String: Any]]
        #expect(faces.count == 1)
        #expect(faces.first?["emotion"] as? String == "Happy", "the astronaut is smiling: \(r.stdout)")
        #expect(FileManager.default.fileExists(atPath: out))
    }

    /// A face crop (issue 2's `fer predict FACE.png`): classified whole, by each bundled model.
    @Test(arguments: ["default", "fast", "fer2013"]) func predictOnAFaceCrop(model: String) throws {
        let face = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut-face.png")
        let r = try run(fer, ["predict", "--crop", "--json", "--model", model, face])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        let f = (rows[0]["faces"] as! [[String: Any]])[0]
        #expect(f["emotion"] as? String == "Happy")
        let probs = try #require(f["probabilities"] as? [String: Double])
        #expect(Set(probs.keys) == Set(Emotion.names) && abs(probs.values.reduce(0, +) - 1) < 1e-4)
    }

    @Test func unknownModelNameIsAClearError() throws {
        let r = try run(fer, ["predict", "--crop", "--model", "fastest", "samples/astronaut-face.png"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--model fastest: no such file, and no bundled model of that name (bundled: default, fast, fer2013"), "\(r.stderr)")
    }
}

@Suite("Sharded batch jobs") struct ShardTests {
    /// `--shard I/N` over a folder: the shards' CSVs, concatenated, are the unsharded CSV's rows with
    /// no file twice and none missing, under one header.
    @Test func shardsCoverTheInputsOnce() throws {
        let dir = Paths.temporaryDirectory("shards")
        for i in 0..<11 { try Image(width: 120, height: 90, channels: 3, fill: UInt8(20 * i)).write(dir + "/img\(i).png") }
        let whole = try run(Paths.ferBinary, ["predict", dir, "--csv"])
        #expect(whole.status == 0, "\(whole.stderr)")
        var merged = ""
        for i in 0..<3 {
            let r = try run(Paths.ferBinary, ["predict", dir, "--csv", "--shard", "\(i)/3"])
            #expect(r.status == 0, "\(r.stderr)")
            merged += r.stdout
        }
        let a = whole.stdout.split(separator: "\n"), b = merged.split(separator: "\n")
        #expect(b.filter { $0.hasPrefix("file,") }.count == 1)
        #expect(a.count == 12 && Set(a) == Set(b) && b.count == a.count)
        let bad = try run(Paths.ferBinary, ["predict", dir, "--shard", "3/3"])
        #expect(bad.status == 1 && bad.stderr.contains("--shard must be I/N"))
    }

    /// Videos split the same way: each shard labels its own videos into the --csv folder.
    @Test func videoShards() throws {
        let dir = Paths.temporaryDirectory("vshards")
        for name in ["a", "b", "c"] {
            let w = try VideoWriter(path: "\(dir)/\(name).avi", fps: 5, width: 96, height: 96)
            for i in 0..<3 { try w.write(Image(width: 96, height: 96, channels: 3, fill: UInt8(40 * i))) }
            try w.close()
        }
        let videos = ["a", "b", "c"].map { "\(dir)/\($0).avi" }
        for i in 0..<2 {
            let r = try run(Paths.ferBinary, ["video"] + videos + ["--timeline-csv", dir + "/timelines", "--shard", "\(i)/2", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let written = try FileManager.default.contentsOfDirectory(atPath: dir + "/timelines").sorted()
        #expect(written == ["a.csv", "b.csv", "c.csv"])
    }
}


/// `fer folds`: person-disjoint folds of a photo folder, as links, with their counts.
@Suite("fer folds") struct FoldsCommandTests {
    @Test func writesPersonDisjointFoldsAsLinks() throws {
        let root = Paths.temporaryDirectory("folds-src"), out = Paths.temporaryDirectory("folds-out") + "/folds"
        for (split, people) in [("train", 0..<6), ("val", 6..<8)] {
            for person in people {
                let emotion = person % 2 == 0 ? "happy" : "sad"
                try FileManager.default.createDirectory(atPath: "\(root)/\(split)/\(emotion)", withIntermediateDirectories: true)
                for k in 1...2 { try Image(width: 8, height: 8, channels: 1, fill: UInt8(person * 10 + k)).write("\(root)/\(split)/\(emotion)/P\(person)_000\(k).png") }
            }
        }
        let r = try run(Paths.ferBinary, ["folds", root, "--folds", "2", "--out", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let counts = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(counts.compactMap { $0["photos"] as? Int }.reduce(0, +) == 16)
        for k in 1...2 {
            let val = try ImageFolder.labelledImages(in: "\(out)/fold-\(k)/val"), train = try ImageFolder.labelledImages(in: "\(out)/fold-\(k)/train")
            #expect(val.count + train.count == 16)
            let valPeople = Set(val.map { PersonFolds.person(of: $0.path) }), trainPeople = Set(train.map { PersonFolds.person(of: $0.path) })
            #expect(valPeople.isDisjoint(with: trainPeople), "fold \(k): \(valPeople.intersection(trainPeople)) on both sides")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: val[0].path).hasPrefix(root))
        }
        #expect(FileManager.default.fileExists(atPath: out + "/folds.json"))
        let again = try run(Paths.ferBinary, ["folds", root, "--out", out])
        #expect(again.status != 0 && again.stderr.contains("exists"))
    }
}
