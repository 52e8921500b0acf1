import Foundation
import Testing
@testable import FERData
@testable import FERExport
@testable import FEREngine
@testable import FERIO
@testable import FERModels

/// `fer export OUT.onnx` checked in ONNX Runtime (installed from pip by scripts/test, for the tests
/// only): every preset's probabilities against the engine's, and the bundled model against
/// `fer predict --crop --json` on 100 FER2013 faces, within 1e-4.
@Suite("ONNX export", .serialized) struct ONNXExportTests {
    static let onnxRuntime: Bool = (try? run("/usr/bin/env", ["python3", "-c", "import onnxruntime"]))?.status == 0
    static let oracle = (Paths.packageRoot as NSString).appendingPathComponent("tools/onnx_run.py")

    /// ONNX Runtime's probabilities (and the model's metadata) for `faces` of `side` x `side` bytes.
    static func onnxRuntime(_ model: String, _ faces: [[UInt8]], side: Int) throws -> (probabilities: [[Double]], metadata: [String: String]) {
        let dir = Paths.temporaryDirectory("onnx")
        let raw = (dir as NSString).appendingPathComponent("faces.u8")
        try Data(faces.flatMap { $0 }).write(to: URL(fileURLWithPath: raw))
        let r = try run("/usr/bin/env", ["python3", oracle, model, raw, "\(faces.count)", "\(side)"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return (try #require(json["probabilities"] as? [[Double]]), json["metadata"] as? [String: String] ?? [:])
    }

    @Test(.enabled(if: onnxRuntime, "onnxruntime is not installed (scripts/test installs it)"), arguments: Preset.allCases)
    func everyPresetMatchesTheEngine(preset: Preset) throws {
        let spec = ModelSpec(preset: preset, width: preset == .mlp ? 64 : 8, fcWidth: preset == .vgg ? 32 : 0, inputSize: preset == .vgg ? 40 : 48)
        let classifier = Classifier(spec: spec, seed: 11)
        classifier.temperature = 1.7  // a calibrated temperature must reach the exported softmax
        // Batch-norm statistics away from 0 and 1, so that exporting them wrongly shows.
        var rng = SplitMix64(seed: 5)
        for b in classifier.network.buffers {
            for i in 0..<b.count { b.values[i] = b.name.hasSuffix("running_var") ? 0.5 + Float(rng.next() % 1000) / 1000 : Float(Int(rng.next() % 200) - 100) / 500 }
            b.changed()
        }
        let path = (Paths.temporaryDirectory("onnx") as NSString).appendingPathComponent("\(preset).onnx")
        try ONNXExport.model(classifier, card: ModelCard(spec: spec, classNames: classifier.classNames)).write(to: URL(fileURLWithPath: path))
        var faces: [[UInt8]] = []
        for f in 0..<12 {
            var face = [UInt8](repeating: 0, count: 48 * 48)
            for i in 0..<face.count { face[i] = UInt8(truncatingIfNeeded: i * (f + 3) + f * 17 + Int(rng.next() % 40)) }
            faces.append(face)
        }
        let ours = classifier.classify(faces: faces)
        let (theirs, metadata) = try Self.onnxRuntime(path, faces, side: 48)
        #expect(metadata["classes"] == Emotion.names.joined(separator: ","))
        #expect(metadata["swift-fer"]?.contains("\"preset\":\"\(preset.rawValue)\"") == true)
        let diff = zip(ours, theirs).flatMap { zip($0, $1).map { abs(Double($0) - $1) } }.max() ?? 1
        #expect(theirs.count == faces.count && diff < 1e-4, "\(preset): max difference \(diff)")
    }

    @Test(.enabled(if: onnxRuntime && Paths.haveFER2013, "needs onnxruntime and FER2013"))
    func bundledModelMatchesFerPredictOnFER2013Faces() throws {
        let test = try #require(SharedFER2013.splits?[.privateTest])
        let dir = Paths.temporaryDirectory("onnx-fer")
        let faceDir = (dir as NSString).appendingPathComponent("faces")
        try FileManager.default.createDirectory(atPath: faceDir, withIntermediateDirectories: true)
        let faces = (0..<100).map { Array(test.image($0)) }
        for (i, f) in faces.enumerated() {
            try Image(width: 48, height: 48, channels: 1, pixels: f).write((faceDir as NSString).appendingPathComponent(String(format: "face%03d.png", i)))
        }
        let model = (dir as NSString).appendingPathComponent("default.onnx")
        let export = try run(Paths.ferBinary, ["export", "default", model])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.contains("ONNX"))
        // The export is the fp32 network; fer predict would run int8 by default on a VNNI CPU.
        let predict = try run(Paths.ferBinary, ["predict", faceDir, "--crop", "--json", "--precision", "fp32"])
        #expect(predict.status == 0, "\(predict.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]])
        let (theirs, _) = try Self.onnxRuntime(model, faces, side: 48)
        var worst = 0.0
        for (i, row) in rows.enumerated() {
            let p = try #require((row["faces"] as? [[String: Any]])?.first?["probabilities"] as? [String: Double])
            for (c, name) in Emotion.names.enumerated() { worst = max(worst, abs((p[name] ?? -1) - theirs[i][c])) }
        }
        #expect(rows.count == 100)
        #expect(worst < 1e-4, "max difference \(worst)")
        print("onnx export: default model on 100 PrivateTest faces, max |p_fer - p_onnxruntime| = \(worst)")
    }

    @Test func exportRefusesWhatItCannotWrite() throws {
        let r = try run(Paths.ferBinary, ["export", "default", "/tmp/x.onnx", "--half"])
        #expect(r.status == 1 && r.stderr.contains("--half"))
        let r2 = try run(Paths.ferBinary, ["export", "default", "/tmp/x.pt"])
        #expect(r2.status == 1 && r2.stderr.contains(".onnx"))
    }
}
