import ArgumentParser
import FER
import FEREngine
#if ONNX
import FERExport
#endif
import FERIO
import FERModels
import FERTraining
import Foundation

extension Benchmark.Mode: ExpressibleByArgument {}

/// One measurement in this process (the parent runs each in a fresh process for a clean peak-memory figure).
struct BenchOne: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-one", abstract: "One benchmark measurement, as JSON.", shouldDisplay: false)
    @OptionGroup var architecture: ArchitectureOptions
    @Option var mode: Benchmark.Mode = .train
    @Option var batch: Int = 64
    @Option var steps: Int = 10
    @Option var precision: Precision = .fp32
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if mode == .train, let problem = AutoPrecision.Work.training("").problem(precision) { throw ValidationError("--precision \(problem)") }
        guard batch >= 1, batch <= 4096 else { throw ValidationError("--batch must be between 1 and 4096, got \(batch)") }
        guard steps >= 1, steps <= 100_000 else { throw ValidationError("--steps must be between 1 and 100000, got \(steps)") }
        if mode == .train, batch < 2 { throw ValidationError("training needs a batch of at least 2 (batch norm)") }
    }

    func run() throws {
        threads.apply()
        let spec = architecture.spec
        let r = try Benchmark.run(spec: spec, mode: mode, batch: batch, steps: steps, precision: precision)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        print(String(decoding: try e.encode(r), as: UTF8.self))
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: the engine against PyTorch, the photo/video pipeline, data loading.",
        subcommands: [EngineBench.self, PipelineBench.self, DataBench.self],
        defaultSubcommand: EngineBench.self)
}

struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Training and inference speed against PyTorch and ONNX Runtime on the same work, in the same run.",
        discussion: """
        For each model: training at batch 64, inference at batch 1 and 64, on --threads threads. This
        engine in each --precisions (training: fp32, bf16; inference: fp32 layer by layer, and the
        lowered network in bf16 and int8), PyTorch eager in fp32 and with bf16 autocast + channels_last
        (benchmarks/peer_pytorch.py), and for inference ONNX Runtime in fp32 and with its own int8
        static quantization, on the same network exported by fer export (benchmarks/peer_onnxruntime.py).
        Each measurement runs in its own process, so peak memory is that measurement's alone. bf16
        rows run only where the CPU has AVX-512 BF16 (elsewhere oneDNN and PyTorch emulate it, slowly).
        The default model's network: --presets vgg --width 48 --fc-width 1024 --input-size 40.
        """)

    @Option(parsing: .upToNextOption, help: "Presets to measure.") var presets: [Preset] = [.cnn, .vgg]
    @Option(help: "First-stage width for every preset (default: each preset's).") var width: Int?
    @Option(help: "Hidden units of the VGG head (0: 64 x width).") var fcWidth: Int = 0
    @Option(help: "Input side (48, or a centre crop such as 40).") var inputSize: Int = 48
    @Option(parsing: .upToNextOption, help: "This engine's precisions (default: fp32, int8, and bf16 where the CPU has it).")
    var precisions: [Precision] = []
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Timed training steps (inference runs 5x as many).") var steps: Int = 10
    @Option(help: "Python with torch installed.") var python: String = "python3"
    @Flag(help: "Skip the PyTorch peer.") var noPeer = false
    @Flag(help: "Skip the ONNX Runtime peer (inference).") var noOnnx = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard steps >= 1, steps <= 100_000 else { throw ValidationError("--steps must be between 1 and 100000, got \(steps)") }
        for p in presets { if let problem = spec(p).problem { throw ValidationError(problem) } }
    }

    func spec(_ preset: Preset) -> ModelSpec { ModelSpec(preset: preset, width: width, fcWidth: fcWidth, inputSize: inputSize) }

    var ours: [Precision] { precisions.isEmpty ? Precision.allCases.filter { $0 != .bf16 || $0.isNative } : precisions }
    /// The bf16 peers run where bf16 is native, or when bf16 was asked for.
    var peerBF16: Bool { Precision.bf16.isNative || precisions.contains(.bf16) }

    struct Row: Codable {
        var model: String; var work: String; var result: Benchmark.Result
        /// This engine's arithmetic (nil for a peer).
        var precision: Precision?
        /// Images per second against the fastest peer measured for this work (nil: no peer).
        var ratioToBestPeer: Double?
        var isPeer: Bool
    }

    /// A peer script from benchmarks/ run by --python.
    func measurePeer(_ script: String, _ args: [String]) -> Benchmark.Result? {
        let r: Benchmark.Result? = PeerProcess.script(script, args, python: python)
        if r == nil { FileHandle.standardError.write(Data("warning: \(script) \(args.filter { $0.hasPrefix("--") && !$0.contains("=") }.joined(separator: " ")) failed (the peers need torch, onnxruntime and onnx: \(python) -m pip install torch onnxruntime onnx)\n".utf8)) }
        return r
    }

    func run() throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let onnxDir = (NSTemporaryDirectory() as NSString).appendingPathComponent("fer-bench-\(getpid())")
        try FileManager.default.createDirectory(atPath: onnxDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: onnxDir) }
        var rows: [Row] = []
        for m in presets {
            // ONNX Runtime's network: this preset exported by fer export (random weights, as ours), once.
            let onnxPath = (onnxDir as NSString).appendingPathComponent("\(m.rawValue).onnx")
            if !noOnnx {
                #if ONNX
                let classifier = Classifier(spec: spec(m))
                try ONNXExport.model(classifier, card: ModelCard(spec: classifier.spec, classNames: classifier.classNames)).write(to: URL(fileURLWithPath: onnxPath))
                #else
                throw ValidationError("this fer was built without ONNX export, which the ONNX Runtime peer needs: add --no-onnx, or build the full fer: swift build -c release")
                #endif
            }
            for (mode, batch) in [(Benchmark.Mode.train, 64), (.infer, 1), (.infer, 64)] {
                let n = mode == .train ? steps : (batch == 1 ? steps * 20 : steps * 3)
                let sizes = (width.map { ["--width", "\($0)"] } ?? []) + ["--fc-width", "\(fcWidth)", "--input-size", "\(inputSize)"]
                let common = ["--preset", m.rawValue, "--mode", mode.rawValue, "--batch", "\(batch)", "--steps", "\(n)", "--threads", "\(threads.threads)"] + sizes
                let work = mode == .train ? "train b\(batch)" : "infer b\(batch)"
                var mine: [(Precision, Benchmark.Result)] = [], peers: [Benchmark.Result] = []
                for p in ours where mode != .train || p.trains {
                    guard let r: Benchmark.Result = PeerProcess.lastJSONLine(me, ["bench-one"] + common + ["--precision", p.rawValue]) else {
                        throw ValidationError("bench-one failed for \(m) \(work) \(p.rawValue)")
                    }
                    mine.append((p, r))
                }
                if !noPeer {
                    peers += [measurePeer("peer_pytorch.py", common)].compactMap { $0 }
                    if peerBF16 { peers += [measurePeer("peer_pytorch.py", common + ["--bf16"])].compactMap { $0 } }
                }
                if mode == .infer, !noOnnx {
                    let ort = ["--model", onnxPath, "--preset", m.rawValue, "--batch", "\(batch)", "--steps", "\(n)", "--threads", "\(threads.threads)"]
                    peers += [measurePeer("peer_onnxruntime.py", ort), measurePeer("peer_onnxruntime.py", ort + ["--int8"])].compactMap { $0 }
                }
                let best = peers.map(\.imagesPerSecond).max()
                rows += mine.map { p, r in Row(model: m.rawValue, work: work, result: r, precision: p, ratioToBestPeer: best.map { r.imagesPerSecond / $0 }, isPeer: false) }
                rows += peers.map { Row(model: m.rawValue, work: work, result: $0, precision: nil, ratioToBestPeer: nil, isPeer: true) }
                if !json { FileHandle.standardError.write(Data("measured \(m.rawValue) \(work)\n".utf8)) }
            }
        }
        if json { try printJSON(rows); return }
        printTable(rows)
    }

    /// The rows for people, then what `auto` would pick from them.
    func printTable(_ rows: [Row]) {
        print("CPU: \(CPU.measuredOn)")
        print("\(threads.threads) threads; images/s (higher is better), ms per batch, peak memory of the measuring process;")
        print("x best peer: this engine's images/s over the fastest peer's on the same work")
        print("model  work      engine                                                  img/s   ms/batch  peak MB  x best peer")
        for r in rows {
            var line = r.model.padding(toLength: 7, withPad: " ", startingAt: 0) + r.work.padding(toLength: 10, withPad: " ", startingAt: 0)
            line += r.result.engine.padding(toLength: 52, withPad: " ", startingAt: 0)
            line += String(format: "%10.1f %10.2f %8.0f", r.result.imagesPerSecond, r.result.millisecondsPerBatch, r.result.peakMemoryMB)
            if let x = r.ratioToBestPeer { line += String(format: "  %6.2fx", x) }
            print(line)
        }
        // What --precision auto picks from these figures: AutoPrecision's rule (the fastest, fp32 on a
        // tie) over its candidates for the work (int8: models that carry int8 ranges).
        for m in presets {
            let picks = ["train b64", "infer b1", "infer b64"].compactMap { work -> String? in
                let candidates = work.hasPrefix("train") ? AutoPrecision.Work.training(work).candidates
                    : AutoPrecision.Work.inference(work, hasInt8Ranges: true).candidates
                let mine = rows.filter { $0.model == m.rawValue && $0.work == work }
                let timed = candidates.compactMap { p in mine.first { $0.precision == p }.map { (p, $0.result.millisecondsPerBatch) } }
                return AutoPrecision.fastest(timed).map { "\(work) \($0.rawValue)" }
            }
            print("auto picks for \(m.rawValue): " + picks.joined(separator: ", "))
        }
    }
}
