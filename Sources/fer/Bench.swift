import ArgumentParser
import FERData
import FEREngine
import FEREvaluation
import FERExport
import FERIO
import FERModels
import FEROptimizers
import FERTraining
import FERVision
import Foundation

extension Benchmark.Mode: ExpressibleByArgument {}

/// One measurement in this process (the parent runs each in a fresh process for a clean peak-memory figure).
struct BenchOne: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-one", abstract: "One benchmark measurement, as JSON.", shouldDisplay: false)
    @OptionGroup var architecture: ArchitectureOptions
    @Option var mode: Benchmark.Mode = .train
    @Option var batch: Int = 64
    @Option var steps: Int = 10
    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard batch >= 1, batch <= 4096 else { throw ValidationError("--batch must be between 1 and 4096, got \(batch)") }
        guard steps >= 1, steps <= 100_000 else { throw ValidationError("--steps must be between 1 and 100000, got \(steps)") }
        if mode == .train, batch < 2 { throw ValidationError("training needs a batch of at least 2 (batch norm)") }
    }

    func run() throws {
        threads.apply()
        let spec = architecture.spec
        let r = Benchmark.run(spec: spec, mode: mode, batch: batch, steps: steps)
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
        abstract: "Training and inference speed against PyTorch on the same work, in the same run.",
        discussion: """
        For each model: training at batch 64, inference at batch 1 and 64, on --threads threads, this
        engine and PyTorch eager (benchmarks/peer_pytorch.py, torch.set_num_threads) side by side, and
        for inference ONNX Runtime on the same network exported by fer export
        (benchmarks/peer_onnxruntime.py). Each measurement runs in its own process, so peak memory is
        that measurement's alone. The default model's network: --presets vgg --width 48 --fc-width 1024 --input-size 40.
        """)

    @Option(parsing: .upToNextOption, help: "Presets to measure.") var presets: [Preset] = [.cnn, .vgg]
    @Option(help: "First-stage width for every preset (default: each preset's).") var width: Int?
    @Option(help: "Hidden units of the VGG head (0: 64 x width).") var fcWidth: Int = 0
    @Option(help: "Input side (48, or a centre crop such as 40).") var inputSize: Int = 48
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

    struct Row: Codable {
        var model: String; var work: String; var ours: Benchmark.Result; var peer: Benchmark.Result?; var ratio: Double?
        var onnx: Benchmark.Result?; var onnxRatio: Double?
    }

    func measure(_ exe: String, _ args: [String]) -> Benchmark.Result? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.standardError
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last else { return nil }
        return try? JSONDecoder().decode(Benchmark.Result.self, from: Data(line.utf8))
    }

    /// A peer script from benchmarks/ run by --python (a path, or a name found on PATH).
    func measurePeer(_ script: String, _ args: [String]) -> Benchmark.Result? {
        let path = (Bundled.packageRoot as NSString).appendingPathComponent("benchmarks/\(script)")
        return python.hasPrefix("/") ? measure(python, [path] + args) : measure("/usr/bin/env", [python, path] + args)
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
                let classifier = Classifier(spec: spec(m))
                try ONNXExport.model(classifier, card: ModelCard(spec: classifier.spec, classNames: classifier.classNames)).write(to: URL(fileURLWithPath: onnxPath))
            }
            for (mode, batch) in [(Benchmark.Mode.train, 64), (.infer, 1), (.infer, 64)] {
                let n = mode == .train ? steps : (batch == 1 ? steps * 20 : steps * 3)
                let sizes = (width.map { ["--width", "\($0)"] } ?? []) + ["--fc-width", "\(fcWidth)", "--input-size", "\(inputSize)"]
                let common = ["--preset", m.rawValue, "--mode", mode.rawValue, "--batch", "\(batch)", "--steps", "\(n)", "--threads", "\(threads.threads)"] + sizes
                guard let ours = measure(me, ["bench-one"] + common) else { throw ValidationError("bench-one failed for \(m) \(mode)") }
                var peer: Benchmark.Result?
                if !noPeer {
                    peer = measurePeer("peer_pytorch.py", common)
                    if peer == nil { FileHandle.standardError.write(Data("warning: the PyTorch peer failed (is torch installed for \(python)?)\n".utf8)) }
                }
                var onnx: Benchmark.Result?
                if mode == .infer, !noOnnx {
                    onnx = measurePeer("peer_onnxruntime.py", ["--model", onnxPath, "--preset", m.rawValue,
                                                               "--batch", "\(batch)", "--steps", "\(n)", "--threads", "\(threads.threads)"])
                    if onnx == nil { FileHandle.standardError.write(Data("warning: the ONNX Runtime peer failed (is onnxruntime installed for \(python)?)\n".utf8)) }
                }
                let work = mode == .train ? "train b\(batch)" : "infer b\(batch)"
                rows.append(Row(model: m.rawValue, work: work, ours: ours, peer: peer, ratio: peer.map { ours.imagesPerSecond / $0.imagesPerSecond },
                                onnx: onnx, onnxRatio: onnx.map { ours.imagesPerSecond / $0.imagesPerSecond }))
                if !json { FileHandle.standardError.write(Data("measured \(m.rawValue) \(work)\n".utf8)) }
            }
        }
        if json { try printJSON(rows); return }
        print("CPU: \(CPU.description)")
        print("\(threads.threads) threads; images/s (higher is better), ms per batch, peak memory of the measuring process")
        print("model  work        swift-fer img/s    ms/batch   peak MB |  PyTorch img/s   ms/batch   peak MB |  ratio | ORT img/s   ms/batch | ratio")
        for r in rows {
            var line = r.model.padding(toLength: 7, withPad: " ", startingAt: 0) + r.work.padding(toLength: 10, withPad: " ", startingAt: 0)
            line += String(format: "%15.1f %11.2f %9.0f |", r.ours.imagesPerSecond, r.ours.millisecondsPerBatch, r.ours.peakMemoryMB)
            if let p = r.peer, let ratio = r.ratio {
                line += String(format: "%15.1f %10.2f %9.0f | %6.2fx", p.imagesPerSecond, p.millisecondsPerBatch, p.peakMemoryMB, ratio)
            } else {
                line += "              -          -         - |      -"
            }
            if let o = r.onnx, let ratio = r.onnxRatio {
                line += String(format: " | %9.1f %10.2f | %5.2fx", o.imagesPerSecond, o.millisecondsPerBatch, ratio)
            }
            print(line)
        }
    }
}
