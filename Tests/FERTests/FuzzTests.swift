import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FERIO
@testable import FERModels
@testable import FERVision

/// The `fer` binary against a generated corpus of bad input: the cases users and the issue found,
/// then seeded random mutations of flag values, CSV rows, image bytes and safetensors files. For
/// each: no signal, no hang, the expected exit code, and on failure one clear `error:` line (or an
/// error row); afterwards no half-written file anywhere.
@Suite("Fuzzing the command line", .serialized) struct FuzzTests {
    enum Expect: Sendable { case ok, fails, either }

    /// The outcomes of the cases, filled by two workers.
    final class Outcomes: @unchecked Sendable {  // every access holds `lock`
        private let lock = NSLock()
        private var items: [Outcome?]
        init(_ n: Int) { items = Array(repeating: nil, count: n) }
        func set(_ i: Int, _ o: Outcome) { lock.lock(); items[i] = o; lock.unlock() }
        var all: [Outcome?] { lock.lock(); defer { lock.unlock() }; return items }
    }

    struct Case: Sendable {
        var name: String
        var args: [String]
        var expect: Expect
        /// Extra check on (status, stdout, stderr); returns a problem or nil.
        var check: (@Sendable (Int32, String, String) -> String?)? = nil
    }

    struct Outcome: Sendable { var name: String; var status: Int32; var signaled: Bool; var timedOut: Bool; var stdout: String; var stderr: String }

    /// Runs the binary with a time limit; a hang is killed and reported.
    static func execute(_ c: Case, timeout: TimeInterval = 90) -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.ferBinary)
        p.arguments = c.args
        let outFile = Paths.temporaryDirectory("fuzz-io") + "/out", errFile = outFile + ".err"
        _ = FileManager.default.createFile(atPath: outFile, contents: nil)
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: outFile)
        p.standardError = FileHandle(forWritingAtPath: errFile)
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return Outcome(name: c.name, status: -1, signaled: false, timedOut: false, stdout: "", stderr: "\(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline { timedOut = true; p.terminate(); kill(p.processIdentifier, SIGKILL); break }
            usleep(10_000)
        }
        p.waitUntilExit()
        let o = (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? "", e = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
        return Outcome(name: c.name, status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal && !timedOut,
                       timedOut: timedOut, stdout: o, stderr: e)
    }

    // MARK: the files the corpus works on

    struct Fixture {
        let dir: String
        let model: String, face: String, photo: String, csv: String, gz: String
        let csvText: String
    }

    static func makeFixture() throws -> Fixture {
        let dir = Paths.temporaryDirectory("fuzz")
        let spec = ModelSpec(preset: .cnn, width: 4)
        let model = dir + "/m.safetensors"
        try Checkpoint.save(Classifier(spec: spec), card: ModelCard(spec: spec, classNames: Emotion.names), to: model)
        let face = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut-face.png")
        let photo = dir + "/photo.png"
        try Image.read((Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png"), channels: 3)
            .resized(width: 200, height: 200).write(photo)
        var rng = SplitMix64(seed: 7)
        var rows: [(String, String, String)] = []
        for (usage, n) in [("Training", 40), ("PublicTest", 10), ("PrivateTest", 10)] {
            for i in 0..<n {
                let px = (0..<2304).map { _ in String(Int(rng.unit() * 256)) }.joined(separator: " ")
                rows.append((String(i % 7), px, usage))
            }
        }
        let csv = dir + "/faces.csv"
        writeCSV(csv, rows: rows)
        let gz = dir + "/faces.csv.gz"
        try gzip(csv, to: gz)
        return Fixture(dir: dir, model: model, face: face, photo: photo, csv: csv, gz: gz,
                       csvText: try String(contentsOfFile: csv, encoding: .utf8))
    }

    static func gzip(_ path: String, to out: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "gzip -c '\(path)' > '\(out)'"]
        try p.run()
        p.waitUntilExit()
    }

    /// A model file whose weights or card have been edited.
    static func editedModel(_ f: Fixture, _ name: String, card edit: (inout ModelCard) -> Void = { _ in },
                            tensors: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in }) throws -> String {
        var st = try SafeTensors.read(f.model)
        var card = try JSONDecoder().decode(ModelCard.self, from: Data(st.metadata["swift-fer"]!.utf8))
        edit(&card)
        st.metadata["swift-fer"] = String(decoding: try JSONEncoder().encode(card), as: UTF8.self)
        tensors(&st.tensors)
        let path = f.dir + "/\(name).safetensors"
        try AtomicFile.write(try st.encoded(), to: path)
        return path
    }

    /// A safetensors file with its JSON header replaced (the length prefix follows the new header).
    static func withHeader(_ data: Data, _ header: String) -> Data {
        var out = Data()
        let h = Data(header.utf8)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(h)
        let n = data.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        out.append(data.suffix(from: 8 + n))
        return out
    }

    // MARK: the corpus

    static func corpus(_ f: Fixture) throws -> [Case] {
        var cases: [Case] = []
        let out = f.dir + "/runs"
        func train(_ extra: [String], _ expect: Expect = .fails, data: String? = nil, name: String? = nil) -> Case {
            Case(name: name ?? "train \(extra.joined(separator: " "))",
                 args: ["train", "--data", data ?? f.csv, "--out", out + "/\(cases.count)", "--preset", "cnn", "--width", "4",
                        "--epochs", "1", "--batch-size", "8", "--quiet"] + extra, expect: expect)
        }
        // Flags the issue found accepted or trapping.
        for (flag, value) in [("--width", "0"), ("--width", "100000000"), ("--dropout", "1"), ("--dropout", "2"), ("--dropout", "-0.5"),
                              ("--limit", "0"), ("--limit", "-5"), ("--val-limit", "-5"), ("--val-limit", "0"), ("--clip", "-1"),
                              ("--weight-decay", "-1"), ("--scale", "-1"), ("--warmup", "-1"), ("--erasing", "2"), ("--shift", "5"),
                              ("--epochs", "-1"), ("--epochs", "0"), ("--lr", "nan"), ("--lr", "0"), ("--batch-size", "1"),
                              ("--rotation", "inf"), ("--label-smoothing", "1"), ("--input-size", "64"), ("--threads", "0")] {
            cases.append(train([flag, value]))
        }
        for v in ["0", "-4", "100000000"] { cases.append(Case(name: "models --input-size \(v)", args: ["models", "--input-size", v], expect: .fails)) }
        // Data layouts that used to trap: no PublicTest rows, image folders without val/.
        let trainOnly = f.dir + "/train-only.csv"
        try (f.csvText.split(separator: "\n").filter { !$0.hasSuffix("PublicTest") }.joined(separator: "\n") + "\n").write(toFile: trainOnly, atomically: true, encoding: .utf8)
        cases.append(train([], .ok, data: trainOnly, name: "train without PublicTest rows"))
        let folders = f.dir + "/folders"
        for (emotion, n) in [("happy", 12), ("Sad", 12)] {
            let d = "\(folders)/train/\(emotion)"
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            for i in 0..<n { try Image(width: 48, height: 48, channels: 1, fill: UInt8(30 + 15 * i)).write("\(d)/\(i).png") }
        }
        cases.append(train([], .ok, data: folders, name: "train on image folders without val/ (and a capitalised Sad/)"))
        let badFolders = f.dir + "/bad-folders"
        try FileManager.default.createDirectory(atPath: badFolders + "/train/smiling", withIntermediateDirectories: true)
        try Image(width: 48, height: 48, channels: 1, fill: 9).write(badFolders + "/train/smiling/a.png")
        cases.append(train([], data: badFolders, name: "train on an unknown emotion folder"))
        // A run folder is never overwritten without --resume.
        let existing = f.dir + "/existing-run"
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.model, toPath: existing + "/best.safetensors")
        cases.append(Case(name: "train into an existing run", args: ["train", "--data", f.csv, "--out", existing, "--quiet"], expect: .fails,
                          check: { _, _, e in e.contains("--resume") ? nil : "no hint to --resume" }))
        // Checkpoints: other class counts, huge shapes, NaN weights, negative variances.
        let threeClasses = try editedModel(f, "three-names") { $0.classNames = ["a", "b", "c"] }
        let nanWeights = try editedModel(f, "nan", tensors: { t in t[0].values[0] = .nan })
        let negativeVar = try editedModel(f, "negvar", tensors: { t in
            if let i = t.firstIndex(where: { $0.name.hasSuffix("running_var") }) { t[i].values[0] = -1 } })
        let zeroWidth = try editedModel(f, "zero-width") { $0.spec.width = 0 }
        var huge = try Data(contentsOf: URL(fileURLWithPath: f.model))
        huge = withHeader(huge, #"{"x":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#)
        try huge.write(to: URL(fileURLWithPath: f.dir + "/huge.safetensors"))
        for (name, m) in [("three class names", threeClasses), ("NaN weights", nanWeights), ("negative running_var", negativeVar),
                          ("zero width", zeroWidth), ("shape 2^40 x 2^40", f.dir + "/huge.safetensors")] {
            cases.append(Case(name: "predict with \(name)", args: ["predict", "--crop", "--json", "--model", m, f.face], expect: .fails))
            cases.append(Case(name: "evaluate with \(name)", args: ["evaluate", "--data", f.csv, "--model", m], expect: .fails))
            cases.append(Case(name: "export \(name)", args: ["export", m, f.dir + "/exported-\(cases.count).safetensors"], expect: .fails))
        }
        // int8 ranges: missing, the wrong count, NaN or negative; a precision that does not exist.
        let spec = ModelSpec(preset: .cnn, width: 4)  // the fixture's network
        let ranges = { (values: [Float]) in try editedModel(f, "ranges-\(values.count)-\(values.first ?? 0)", tensors: { t in
            t.append((name: Classifier.int8RangesTensor, shape: [values.count], values: values)) }) }
        let layers = 2 * (InferenceNetwork.flatten(spec.build(seed: 1)).filter { $0 is Conv2D || $0 is Dense }.count)
        for (name, m) in [("no int8 ranges", f.model), ("3 int8 ranges", try ranges([1, 2, 3])),
                          ("NaN int8 ranges", try ranges([.nan] + .init(repeating: 1, count: layers - 1))),
                          ("negative int8 ranges", try ranges([-1] + .init(repeating: 1, count: layers - 1)))] {
            cases.append(Case(name: "evaluate --precision int8 with \(name)", args: ["evaluate", "--data", f.csv, "--model", m, "--precision", "int8"],
                              expect: .fails, check: { _, _, e in e.contains("int8") ? nil : "the error does not say int8" }))
        }
        cases.append(Case(name: "evaluate --precision int8 with good ranges", args: ["evaluate", "--data", f.csv, "--model", try ranges(.init(repeating: 2, count: layers)),
                                                                                      "--precision", "int8", "--json"], expect: .ok))
        cases.append(Case(name: "predict --precision int9", args: ["predict", "--crop", "--model", f.model, "--precision", "int9", f.face], expect: .fails))
        // Gzip: several members are one file; a cut one is an error.
        let multi = f.dir + "/multi.csv.gz"
        let head = f.dir + "/head.csv", tail = f.dir + "/tail.csv"
        let lines = f.csvText.split(separator: "\n")
        try (lines[..<30].joined(separator: "\n") + "\n").write(toFile: head, atomically: true, encoding: .utf8)
        try (lines[30...].joined(separator: "\n") + "\n").write(toFile: tail, atomically: true, encoding: .utf8)
        try gzip(head, to: head + ".gz")
        try gzip(tail, to: tail + ".gz")
        try (Data(contentsOf: URL(fileURLWithPath: head + ".gz")) + Data(contentsOf: URL(fileURLWithPath: tail + ".gz"))).write(to: URL(fileURLWithPath: multi))
        cases.append(Case(name: "evaluate a two-member .gz", args: ["evaluate", "--data", multi, "--model", f.model, "--json"], expect: .ok,
                          check: { _, o, _ in o.contains("\"count\" : 10") ? nil : "PrivateTest rows of the second member missing" }))
        let cut = f.dir + "/cut.csv.gz"
        let gzBytes = try Data(contentsOf: URL(fileURLWithPath: f.gz))
        try gzBytes.prefix(gzBytes.count / 2).write(to: URL(fileURLWithPath: cut))
        cases.append(Case(name: "evaluate a cut .gz", args: ["evaluate", "--data", cut, "--model", f.model], expect: .fails))
        cases.append(Case(name: "evaluate an empty split", args: ["evaluate", "--data", trainOnly, "--model", f.model, "--split", "PublicTest"], expect: .fails))
        // Inputs are never overwritten.
        let photoCopy = f.dir + "/keep.png"
        try FileManager.default.copyItem(atPath: f.photo, toPath: photoCopy)
        cases.append(Case(name: "predict --annotate onto its input", args: ["predict", photoCopy, "--annotate", photoCopy, "--model", f.model], expect: .fails))
        cases.append(Case(name: "export onto its input", args: ["export", f.model, f.model], expect: .fails))
        let clip = f.dir + "/clip.avi"
        let writer = try VideoWriterForTests.make(clip)
        cases.append(Case(name: "video --out onto its input", args: ["video", clip, "--out", clip], expect: .fails))
        _ = writer
        for v in ["nan", "5", "0", "-1"] {
            cases.append(Case(name: "video --smoothing \(v)", args: ["video", clip, "--json", "--smoothing", v], expect: .fails))
        }
        let tiny = f.dir + "/tiny.avi"
        try Data(repeating: 0x41, count: 1024).write(to: URL(fileURLWithPath: tiny))
        cases.append(Case(name: "video of a 1 kB non-video", args: ["video", tiny, "--json"], expect: .fails))
        // Detector options that do not apply, or are out of range.
        for extra in [["--detector", "mtcnn", "--scale-factor", "1.2"], ["--detector", "haar", "--scale-factor", "1.0"],
                      ["--detector", "haar", "--min-neighbors", "-1"], ["--min-size", "0"], ["--detect-side", "5"], ["--margin", "-1"]] {
            cases.append(Case(name: "predict \(extra.joined(separator: " "))", args: ["predict", f.photo, "--model", f.model] + extra, expect: .fails))
        }
        // Inputs that are not files of data.
        let empty = f.dir + "/empty-folder"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        cases.append(Case(name: "predict an empty folder", args: ["predict", empty], expect: .fails))
        let fifo = f.dir + "/pipe.png"
        mkfifo(fifo, 0o644)
        cases.append(Case(name: "predict a FIFO", args: ["predict", fifo, "--model", f.model], expect: .fails))
        cases.append(Case(name: "evaluate a FIFO", args: ["evaluate", "--data", fifo, "--model", f.model], expect: .fails))
        cases.append(Case(name: "evaluate --photos with an unknown folder", args: ["evaluate", "--photos", badFolders + "/train", "--model", f.model], expect: .fails))
        cases.append(Case(name: "predict --csv keeps every column", args: ["predict", f.photo, empty + "/../missing.png", "--csv", "--model", f.model],
                          expect: .fails, check: { _, o, _ in
                              let rows = o.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).count }
                              return Set(rows).count == 1 ? nil : "rows with different field counts: \(rows)" }))

        // Seeded random flag values.
        var rng = SplitMix64(seed: 2026)
        let hostile = ["0", "-1", "-7", "nan", "inf", "-inf", "1e30", "100000000", "0.5", "abc", "", "1e-45", "3", "9223372036854775807"]
        let templates: [([String], [String])] = [
            (["train", "--data", "/nonexistent.csv", "--out", out + "/flags"],
             ["--width", "--fc-width", "--input-size", "--dropout", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay",
              "--warmup", "--step-epochs", "--gamma", "--plateau-patience", "--label-smoothing", "--rotation", "--shift", "--scale",
              "--erasing", "--seed", "--patience", "--clip", "--threads", "--limit", "--val-limit", "--ferplus-weight",
              "--teacher-weight", "--teacher-temperature", "--teacher-tta"]),
            (["predict", "--crop", "--model", f.model, f.face], ["--threads", "--min-size", "--detect-side", "--margin"]),
            (["predict", "--model", f.model, f.photo], ["--min-size", "--detect-side", "--margin", "--threads"]),
            (["models"], ["--input-size"]),
            (["evaluate", "--data", f.csv, "--model", f.model], ["--threads"]),
            (["bench-one", "--steps", "1"], ["--batch", "--width", "--input-size", "--threads"]),
            (["video", clip, "--json"], ["--smoothing", "--full-scan", "--max-frames"]),
            (["calibrate", "crop", "--data", "/nonexistent.csv"], ["--faces"]),
        ]
        for _ in 0..<70 {
            let (base, flags) = templates[Int(rng.next() % UInt64(templates.count))]
            let flag = flags[Int(rng.next() % UInt64(flags.count))], value = hostile[Int(rng.next() % UInt64(hostile.count))]
            cases.append(Case(name: "\(base[0]) \(flag) '\(value)'", args: base + [flag, value], expect: .either))
        }

        // Seeded CSV row mutations.
        let csvLines = f.csvText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for k in 0..<50 {
            var lines = csvLines
            let row = 1 + Int(rng.next() % UInt64(lines.count - 2))
            var fields = lines[row].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            switch rng.next() % 10 {
            case 0: fields.removeLast()
            case 1: fields.append("extra")
            case 2: fields[0] = ["7", "-1", "x", "", "3.5", "99999999999999999999"][Int(rng.next() % 6)]
            case 3: fields[2] = ["Train", "", "privatetest", "PublicTest "][Int(rng.next() % 4)]
            case 4:
                var px = fields[1].split(separator: " ").map(String.init)
                px[Int(rng.next() % UInt64(px.count))] = ["256", "-1", "x", "1.5", "", "00012"][Int(rng.next() % 6)]
                fields[1] = px.joined(separator: " ")
            case 5: fields[1] = String(fields[1].prefix(Int(rng.next() % 9000)))
            case 6: fields[1] += " 12"
            case 7: fields = [fields.joined(separator: ",") + "\r"]
            case 8: lines.insert("", at: row); fields = lines[row + 1].split(separator: ",").map(String.init)
            default: fields[1] = fields[1].replacingOccurrences(of: " ", with: "  ")
            }
            if rng.next() % 10 != 8 { lines[row] = fields.joined(separator: ",") }
            if k % 7 == 0 { lines[0] = ["emotion,pixels", "emotion,pixels,Usage,x", "Emotion,Pixels,Usage", ""][k % 4] }
            let path = f.dir + "/mutated-\(k).csv"
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
            cases.append(Case(name: "evaluate CSV mutation \(k) (row \(row))", args: ["evaluate", "--data", path, "--model", f.model, "--json"],
                              expect: .either))
        }

        // Seeded image byte mutations.
        let png = try Data(contentsOf: URL(fileURLWithPath: f.photo))
        let jpgPath = f.dir + "/photo.jpg"
        try Image.read(f.photo, channels: 3).write(jpgPath)
        let jpg = try Data(contentsOf: URL(fileURLWithPath: jpgPath))
        for k in 0..<40 {
            var bytes = [UInt8](k % 2 == 0 ? png : jpg)
            switch rng.next() % 4 {
            case 0: for _ in 0..<(1 + rng.next() % 20) { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(rng.next() & 0xFF) }
            case 1: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            case 2: let at = 8 + Int(rng.next() % 64); if at < bytes.count { for i in at..<min(at + 16, bytes.count) { bytes[i] = 0xFF } }
            default: bytes.insert(contentsOf: (0..<64).map { _ in UInt8(rng.next() & 0xFF) }, at: Int(rng.next() % UInt64(bytes.count)))
            }
            let path = f.dir + "/mutated-\(k).\(k % 2 == 0 ? "png" : "jpg")"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            cases.append(Case(name: "predict image mutation \(k)", args: ["predict", path, "--model", f.model, "--json"], expect: .either,
                              check: { s, o, _ in s == 0 || o.contains("\"error\"") ? nil : "a failed image has no error row" }))
        }

        // Seeded safetensors mutations: header text and data bytes.
        let model = try Data(contentsOf: URL(fileURLWithPath: f.model))
        let n = model.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self)) }
        let header = String(decoding: model[8 ..< 8 + n], as: UTF8.self)
        let digits = Array(header.indices.filter { header[$0].isNumber })
        for k in 0..<40 {
            var data = model
            switch rng.next() % 5 {
            case 0, 1:
                var h = header
                let at = digits[Int(rng.next() % UInt64(digits.count))]
                h.replaceSubrange(at ... at, with: ["9", "0", "-", "99999999999", "e", "\""][Int(rng.next() % 6)])
                data = withHeader(model, h)
            case 2:
                var h = header
                for word in ["F32", "shape", "data_offsets", "swift-fer", "classNames", "inputSize"].shuffled(using: &rng).prefix(1) {
                    h = h.replacingOccurrences(of: word, with: ["F64", "shap", "I8", "x"][Int(rng.next() % 4)])
                }
                data = withHeader(model, h)
            case 3:
                for _ in 0..<(1 + rng.next() % 8) { data[8 + n + Int(rng.next() % UInt64(data.count - 8 - n))] = 0xFF }  // NaNs and huge values
            default:
                data = data.prefix(Int(rng.next() % UInt64(data.count)))
            }
            let path = f.dir + "/mutated-\(k).safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            cases.append(Case(name: "predict with safetensors mutation \(k)", args: ["predict", "--crop", "--json", "--model", path, f.face], expect: .either))
        }
        return cases
    }

    @Test func corpusNeverCrashesHangsOrLosesData() throws {
        let f = try Self.makeFixture()
        let cases = try Self.corpus(f)
        #expect(cases.count >= 200)
        let protected = [f.photo, f.dir + "/keep.png", f.model, f.csv, f.gz, f.dir + "/clip.avi"]
        let before = protected.map { FileManager.default.contents(atPath: $0) }
        let results = Outcomes(cases.count)
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for i in stride(from: worker, to: cases.count, by: 2) { results.set(i, Self.execute(cases[i])) }
        }
        let outcomes = results.all
        var ok = 0, errors = 0
        for (c, o) in zip(cases, outcomes.compactMap { $0 }) {
            let said = "\(c.name): exit \(o.status)\n\(o.stderr.suffix(400))"
            #expect(!o.signaled, "killed by a signal: \(said)")
            #expect(!o.timedOut, "hung: \(said)")
            if o.signaled || o.timedOut { continue }
            #expect(o.status == 0 || o.status == 1, "exit code: \(said)")
            switch c.expect {
            case .ok: #expect(o.status == 0, "should succeed: \(said)")
            case .fails: #expect(o.status == 1, "should fail: \(said)")
            case .either: break
            }
            if o.status != 0 {
                let message = o.stderr.contains("error:") || o.stdout.contains("error")
                #expect(message, "failed without a message: \(said)")
                errors += 1
            } else {
                ok += 1
            }
            if let problem = c.check?(o.status, o.stdout, o.stderr) { Issue.record("\(c.name): \(problem)") }
        }
        // Nothing half-written, and no input changed.
        let leftovers = (FileManager.default.enumerator(atPath: f.dir)?.allObjects as? [String] ?? []).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
        for (path, data) in zip(protected, before) { #expect(FileManager.default.contents(atPath: path) == data, "\(path) changed") }
        print("fuzz corpus: \(cases.count) cases, \(ok) ran, \(errors) clear errors, "
              + "\(outcomes.compactMap { $0 }.filter(\.signaled).count) signals, \(outcomes.compactMap { $0 }.filter(\.timedOut).count) hangs")
    }
}

/// A short real video for the video cases.
enum VideoWriterForTests {
    static func make(_ path: String) throws -> Bool {
        let photo = try Image.read((Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png"), channels: 3)
            .resized(width: 160, height: 160)
        let w = try VideoWriter(path: path, fps: 5, width: 160, height: 160)
        for _ in 0..<3 { try w.write(photo) }
        try w.close()
        return true
    }
}

/// Images that decoders and header readers may read differently: the EXIF Orientation tag in every
/// form a camera or an attacker writes it, and files cut short in every format. The answer's size
/// must be the size of the pixels decoded, every box inside it, and a cut file an error naming it.
@Suite("Fuzzing images: EXIF variants and cut files", .serialized) struct ImageFuzzTests {
    /// An APP1 segment holding an EXIF block whose IFD0 has one Orientation entry.
    static func exifSegment(orientation: Int, littleEndian: Bool, long: Bool) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { littleEndian ? u16(v & 0xFFFF) + u16(v >> 16) : u16(v >> 16) + u16(v & 0xFFFF) }
        let value = long ? u32(orientation) : u16(orientation) + [0, 0]
        let tiff = Array((littleEndian ? "II" : "MM").utf8) + u16(42) + u32(8) + u16(1)
            + u16(0x0112) + u16(long ? 4 : 3) + u32(1) + value + u32(0)
        return app1(Array("Exif".utf8) + [0, 0] + tiff)
    }

    static func app1(_ payload: [UInt8]) -> [UInt8] {
        let length = payload.count + 2
        return [0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }

    /// Offset of the first start-of-frame marker in a plain JPEG.
    static func frameOffset(_ jpeg: [UInt8]) -> Int {
        var i = 2
        while i + 3 < jpeg.count {
            let marker = jpeg[i + 1]
            if (0xC0...0xC3).contains(marker) { return i }
            i += 2 + (Int(jpeg[i + 2]) << 8 | Int(jpeg[i + 3]))
        }
        return 2
    }

    enum Placement: CaseIterable { case first, twoSegments, afterXMP, afterFrameHeader }

    static func variant(_ jpeg: [UInt8], orientation: Int, littleEndian: Bool, long: Bool, placement: Placement) -> [UInt8] {
        let exif = exifSegment(orientation: orientation, littleEndian: littleEndian, long: long)
        let start = Array(jpeg.prefix(2)), rest = Array(jpeg.dropFirst(2))
        switch placement {
        case .first:
            return start + exif + rest
        case .twoSegments:  // a second EXIF block that says otherwise
            return start + exif + exifSegment(orientation: 9 - orientation, littleEndian: !littleEndian, long: !long) + rest
        case .afterXMP:
            return start + app1(Array("http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>".utf8)) + exif + rest
        case .afterFrameHeader:
            let sof = frameOffset(jpeg)
            let length = Int(jpeg[sof + 2]) << 8 | Int(jpeg[sof + 3])
            let end = sof + 2 + length
            return Array(jpeg[..<end]) + exif + Array(jpeg[end...])
        }
    }

    @Test func everyEXIFFormGivesSizesAndBoxesOfTheDecodedPixels() throws {
        DNNL.setThreads(2)
        let analyzer = FaceAnalyzer(detector: try MTCNNDetector(weights: BundledTestModels.mtcnn),
                                    classifier: try Checkpoint.load(VisionTests.bundledModel).0)
        // Wide, so that a quarter turn changes the size; the face off centre.
        let photo = try Image.read(VisionTests.photo, channels: 3).resized(width: 360, height: 240)
        let jpeg = try photo.encoded(".jpg")
        var variants = 0, turned = 0, faces = 0
        for placement in Placement.allCases {
            for littleEndian in [false, true] {
                for long in [false, true] {
                    for orientation in 1...8 {
                        let bytes = Self.variant(jpeg, orientation: orientation, littleEndian: littleEndian, long: long, placement: placement)
                        let what = "orientation \(orientation) \(littleEndian ? "II" : "MM") \(long ? "LONG" : "SHORT") \(placement)"
                        variants += 1
                        for minSide in [0, 160] {
                            let s = try ScaledImage.decode(bytes, channels: 3, minSide: minSide, name: what)
                            // The size reported is that of the decoded pixels, scaled back.
                            #expect(abs(Double(s.originalWidth) * s.scale - Double(s.image.width)) <= 1
                                    && abs(Double(s.originalHeight) * s.scale - Double(s.image.height)) <= 1,
                                    "\(what): \(s.originalWidth)x\(s.originalHeight) for \(s.image.width)x\(s.image.height) decoded")
                            #expect(Set([s.originalWidth, s.originalHeight]) == [360, 240], "\(what)")
                            if minSide == 0 && s.originalWidth == 240 { turned += 1 }
                            for face in analyzer.analyze(s) {
                                faces += 1
                                let b = face.box
                                #expect(b.x >= -1 && b.y >= -1 && b.x + b.width <= s.originalWidth + 1 && b.y + b.height <= s.originalHeight + 1,
                                        "\(what): box \(b) outside \(s.originalWidth)x\(s.originalHeight)")
                            }
                        }
                    }
                }
            }
        }
        #expect(variants == 128)
        #expect(turned > 0, "no variant was turned: the EXIF segments were not read at all")
        #expect(faces > 128, "the face should be found in most variants")
        print("image fuzz: \(variants) EXIF variants x 2 decode sizes, \(turned) decoded turned, \(faces) faces, every size and box in the decoded pixels")
    }

    @Test func aFileCutShortIsAnErrorNamingItInEveryFormat() throws {
        let photo = try Image.read(VisionTests.photo, channels: 3).resized(width: 200, height: 160)
        var cuts = 0, errors = 0
        var silent: [String] = []
        for ext in [".jpg", ".png", ".webp", ".bmp"] {
            let whole = try photo.encoded(ext)
            _ = try ScaledImage.decode(whole, channels: 3, minSide: 0, name: "whole\(ext)")
            for percent in stride(from: 5, through: 95, by: 10) {
                let cut = Array(whole.prefix(whole.count * percent / 100))
                let name = "cut-\(percent)\(ext)"
                cuts += 1
                do {
                    _ = try ScaledImage.decode(cut, channels: 3, minSide: 0, name: name)
                    silent.append(name)
                } catch {
                    errors += 1
                    #expect("\(error)".contains(name), "\(name): \(error)")
                }
            }
        }
        #expect(silent.isEmpty, "decoded without an error: \(silent)")
        print("image fuzz: \(cuts) files cut short (JPEG, PNG, WebP, BMP at 5-95%), \(errors) clear errors, \(silent.count) silent")
    }
}
