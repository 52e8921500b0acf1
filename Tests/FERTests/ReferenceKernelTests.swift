import Foundation
import Testing
@testable import FEREngine
@testable import FERIO
@testable import FERVision

/// No oneDNN reference implementation (`ref:` in its verbose output: a plain C loop, 10-200x slower
/// than its JIT kernels) on a hot path: the photo pipeline, live frames and a training step, in every
/// arithmetic the CPU runs. Checked with the kernels of the CPU the tests run on and, where it has
/// AVX-512, with AVX2's too (`ONEDNN_MAX_CPU_ISA=AVX2`): AVX2 is the common CPU of laptops and
/// cloud VMs, and MTCNN's PReLU once ran the reference loop there alone (a photo took 205 ms).
@Suite("No reference kernel on a hot path", .serialized)
struct ReferenceKernelTests {
    let fer = Paths.ferBinary
    let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")

    /// The kernel sets to check: this CPU's own (nil), and AVX2's where the CPU has more.
    static let caps: [String?] = CPUFeatures.kernelISA.hasPrefix("avx512") ? [nil, "AVX2"] : [nil]

    /// The inference arithmetics oneDNN runs with these kernels (bf16 only where it is native).
    static func inferencePrecisions(_ cap: String?) -> [String] { ["fp32", "int8"] + (cap == nil && CPUFeatures.bf16 ? ["bf16"] : []) }

    static func trainingPrecisions(_ cap: String?) -> [String] { ["fp32"] + (cap == nil && CPUFeatures.bf16 ? ["bf16"] : []) }

    /// Runs `fer arguments` with oneDNN's verbose output on and returns the reference kernels it
    /// executed, one line each: primitive, implementation, direction and the arguments' data types.
    func referenceKernels(_ arguments: [String], cap: String?) throws -> [String] {
        let env: [String: String?] = ["ONEDNN_VERBOSE": "1", "ONEDNN_MAX_CPU_ISA": cap, "DNNL_MAX_CPU_ISA": nil]
        let r = try run(fer, arguments, environment: env)
        let what = "fer \(arguments.joined(separator: " "))\(cap.map { " with ONEDNN_MAX_CPU_ISA=\($0)" } ?? "")"
        #expect(r.status == 0, "\(what): \(r.stderr)")
        // onednn_verbose,exec,cpu,PRIMITIVE,IMPLEMENTATION,DIRECTION,ARGUMENTS,...
        let executed = r.stdout.split(separator: "\n").filter { $0.hasPrefix("onednn_verbose,exec,") }
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count > 6 }
        #expect(!executed.isEmpty, "\(what) printed no oneDNN kernel: the check would see nothing")
        let reference = executed.filter { $0[4].hasPrefix("ref") }.map { f in
            let types = f[6].split(separator: " ").map { $0.split(separator: ":").first.map(String.init) ?? "" }
            return "\(f[3]) \(f[4]) \(f[5]) (\(types.joined(separator: " ")))"
        }
        return Set(reference).sorted().map { "\(what): \($0)" }
    }

    @Test(arguments: caps) func photoPipeline(cap: String?) throws {
        for p in Self.inferencePrecisions(cap) {
            let found = try referenceKernels(["predict", photo, "--json", "--precision", p, "--detector-precision", p], cap: cap)
            #expect(found.isEmpty, "reference kernels ran:\n\(found.joined(separator: "\n"))")
        }
    }

    /// Frames of a video through `fer live`: full scans and O-Net tracking between them.
    @Test(arguments: caps) func liveFrames(cap: String?) throws {
        let dir = Paths.temporaryDirectory("ref-live")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let video = dir + "/face.mp4"
        let portrait = try Image.read(photo, channels: 3).resized(width: 200, height: 200)
        let w = try VideoWriter(path: video, fps: 10, width: 320, height: 240)
        for i in 0..<8 {
            var frame = Image(width: 320, height: 240, channels: 3, fill: 90)
            for y in 0..<200 { for x in 0..<200 { for c in 0..<3 { frame.pixels[((20 + y) * 320 + 40 + 4 * i + x) * 3 + c] = portrait.pixels[(y * 200 + x) * 3 + c] } } }
            try w.write(frame)
        }
        try w.close()
        for p in Self.inferencePrecisions(cap) {
            let found = try referenceKernels(["live", "--source", video, "--headless", "--full-scan", "3", "--precision", p, "--detector-precision", p], cap: cap)
            #expect(found.isEmpty, "reference kernels ran:\n\(found.joined(separator: "\n"))")
        }
    }

    /// One epoch of two training steps and a validation pass for every preset, with channel counts
    /// (8) that leave oneDNN's blocks of 16 padded.
    @Test(arguments: caps) func trainingSteps(cap: String?) throws {
        let dir = Paths.temporaryDirectory("ref-train")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: 3)
        let rows = (0..<40).map { i in (String(i % 7), (0..<2304).map { _ in String(rng.next() % 256) }.joined(separator: " "), i < 32 ? "Training" : "PublicTest") }
        writeCSV(dir + "/faces.csv", rows: rows)
        for preset in ["mlp", "cnn", "vgg", "resnet"] {
            for p in Self.trainingPrecisions(cap) {
                let found = try referenceKernels(["train", "--data", dir + "/faces.csv", "--preset", preset, "--width", "8", "--epochs", "1",
                                                  "--batch-size", "16", "--precision", p, "--out", "\(dir)/\(preset)-\(p)", "--quiet"], cap: cap)
                #expect(found.isEmpty, "reference kernels ran:\n\(found.joined(separator: "\n"))")
            }
        }
    }
}
