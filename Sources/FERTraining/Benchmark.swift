import Foundation
import FEREngine
import FEROptimizers
import FERData
import FERModels

/// Throughput measurements of this engine, the same work the PyTorch peer in benchmarks/ runs:
/// random 48x48 images, fixed labels, batch-norm in training mode, Adam updates.
public enum Benchmark {
    public enum Mode: String, CaseIterable, Codable, Sendable { case train, infer }

    public struct Result: Codable, Sendable {
        public var engine: String
        public var model: String
        public var mode: String
        public var batch: Int
        public var imagesPerSecond: Double
        public var millisecondsPerBatch: Double
        public var peakMemoryMB: Double
    }

    /// Peak resident memory of this process so far (Linux: VmHWM).
    public static var peakMemoryMB: Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return 0 }
        let kb = Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0") ?? 0
        return kb / 1024
    }

    /// `precision`: fp32 or bf16 for training; fp32 (the layers as trained), bf16 or int8 (the
    /// lowered `InferenceNetwork`, int8 calibrated on the benchmark's own images) for inference.
    public static func run(spec: ModelSpec, mode: Mode, batch: Int, steps: Int, precision: Precision = .fp32, warmup: Int = 3) throws -> Result {
        let net = spec.build(seed: 1)
        var rng = SplitMix64(seed: 7)
        let size = spec.inputSize
        let data = Batch(images: (0..<(batch * size * size)).map { _ in rng.unit() }, labels: (0..<batch).map { $0 % spec.classes }, size: size)
        var seconds = 0.0
        var forward: (Tensor) -> Tensor = { net.forward($0, mode: .inference) }
        if mode == .infer, precision != .fp32 {
            let fp32 = try InferenceNetwork(net, inputShape: spec.inputShape, precision: .fp32)
            let lowered = try InferenceNetwork(net, inputShape: spec.inputShape, precision: precision,
                                               ranges: precision == .int8 ? fp32.calibrationRanges([data.tensor()]) : nil)
            forward = { lowered.forward($0) }
        }
        if mode == .train { net.use(precision) }
        switch mode {
        case .train:
            let opt = OptimizerConfig().make(net.parameters)
            let loss = SoftmaxCrossEntropy()
            for _ in 0..<warmup { _ = trainStep(net, data, loss: loss, optimizer: opt) }
            let t0 = DispatchTime.now()
            for _ in 0..<steps { _ = trainStep(net, data, loss: loss, optimizer: opt) }
            seconds = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
        case .infer:
            let x = data.tensor()
            for _ in 0..<warmup { _ = forward(x) }
            let t0 = DispatchTime.now()
            for _ in 0..<steps { _ = LogSoftmax.shared.probabilities(forward(data.tensor())) }
            seconds = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
        }
        return Result(engine: "swift-fer \(precision.rawValue) (oneDNN \(DNNL.version))", model: spec.preset.rawValue, mode: mode.rawValue, batch: batch,
                      imagesPerSecond: Double(steps * batch) / seconds, millisecondsPerBatch: 1000 * seconds / Double(steps),
                      peakMemoryMB: peakMemoryMB)
    }
}
