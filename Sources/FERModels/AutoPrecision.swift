import Foundation
import FEREngine
import FERIO

/// What `--precision auto` means on this machine: the arithmetic measured fastest for the work at
/// hand, among those the CPU runs natively and the model allows.
///
/// "Sounds fastest" is not a rule: on an AVX-512 BF16 Xeon without AMX, oneDNN's fp32 convolutions
/// take Winograd kernels and its bf16 ones direct kernels, so bf16 trains at half fp32's speed
/// (docs/benchmarks.md). So whenever more than one arithmetic could run, each is timed on the real
/// network and shape for a few steps, once per CPU model and work, and the result is kept in
/// `~/.cache/swift-fer/precision.json`; with one candidate (fp32 for a model without int8 ranges on
/// a CPU without BF16) nothing is timed.
public enum AutoPrecision {
    /// A choice and what it rests on.
    public struct Decision: Codable, Sendable, Equatable {
        public var choice: String
        /// Seconds per step of each candidate timed (empty when there was nothing to compare).
        public var seconds: [String: Double]
        /// True when the timings came from the cache.
        public var cached: Bool
        /// One line for logs and configs: what was picked, and why.
        public var reason: String {
            guard seconds.count > 1 else { return "\(choice): the only arithmetic this CPU runs natively here" }
            let t = seconds.sorted { $0.value < $1.value }.map { String(format: "%@ %.2f ms", $0.key, 1000 * $0.value) }.joined(separator: ", ")
            return "\(choice): fastest measured on \(CPU.measuredOn) (\(t) per step\(cached ? ", cached" : ""))"
        }
    }

    /// The fastest of the timed candidates; a tie (within 3%) goes to the earlier candidate, so
    /// fp32, listed first, is never given up for noise.
    public static func fastest(_ timings: [(name: String, seconds: Double)]) -> String? {
        guard var best = timings.first else { return nil }
        for t in timings.dropFirst() where t.seconds.isFinite && t.seconds < best.seconds * 0.97 { best = t }
        return best.name
    }

    /// Picks among `candidates` (fp32 first): the only one, the cached measurement for this CPU and
    /// `work`, or a new measurement (`measure` returns seconds per step), which is then cached.
    /// `cacheFile` nil: measure every time.
    public static func choose(_ candidates: [String], work: String, cacheFile: String? = defaultCacheFile,
                              measure: (String) throws -> Double) rethrows -> Decision {
        guard candidates.count > 1 else { return Decision(choice: candidates.first ?? "fp32", seconds: [:], cached: false) }
        guard let cacheFile else { return try measureAll(candidates, measure) }
        // One process at a time looks up, measures and writes: two runs started together (two MPI
        // ranks, parallel tests) would otherwise time each other's load, and the last to write would
        // drop the other's entry, so a later run could measure again and choose differently.
        return try withFileLock(cacheFile + ".lock") {
            let key = "\(CPU.measuredOn) | \(work) | \(candidates.joined(separator: ","))"
            var table = load(cacheFile)
            if let seconds = table[key], Set(seconds.keys) == Set(candidates),
               let choice = fastest(candidates.map { ($0, seconds[$0]!) }) {
                return Decision(choice: choice, seconds: seconds, cached: true)
            }
            let d = try measureAll(candidates, measure)
            table[key] = d.seconds
            try? AtomicFile.write(Data((try? JSONEncoder.sorted.encode(table)) ?? Data()), to: cacheFile)  // a cache that cannot be written is measured again next time
            return d
        }
    }

    static func measureAll(_ candidates: [String], _ measure: (String) throws -> Double) rethrows -> Decision {
        var seconds: [String: Double] = [:]
        for c in candidates { seconds[c] = try measure(c) }
        return Decision(choice: fastest(candidates.map { ($0, seconds[$0]!) }) ?? candidates[0], seconds: seconds, cached: false)
    }

    public static var defaultCacheFile: String { (KeyedCache.defaultFolder as NSString).appendingPathComponent("precision.json") }

    static func load(_ path: String) -> [String: [String: Double]] {
        guard let d = FileManager.default.contents(atPath: path) else { return [:] }
        return (try? JSONDecoder().decode([String: [String: Double]].self, from: d)) ?? [:]  // damaged: measured again and rewritten
    }

    /// Seconds per call of `body`, the median of `steps` calls after `warmup` (the first calls
    /// compile oneDNN's kernels).
    public static func time(warmup: Int = 2, steps: Int = 5, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        var t: [Double] = []
        for _ in 0..<steps {
            let start = DispatchTime.now()
            try body()
            t.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
        return t.sorted()[t.count / 2]
    }
}

extension AutoPrecision {
    /// The arithmetics this CPU runs natively for a network: fp32, int8 (int8 ranges for the network,
    /// and `int8Kernels`: by default oneDNN's, AVX2 or later), bf16 (AVX-512 BF16 or AMX). fp32
    /// first: it wins ties. Which is fastest is measured, never assumed.
    public static func inferenceCandidates(hasInt8Ranges: Bool, int8Kernels: Bool = CPUFeatures.int8) -> [InferencePrecision] {
        [.fp32] + (int8Kernels && hasInt8Ranges ? [.int8] : []) + (CPUFeatures.bf16 ? [.bf16] : [])
    }
}

extension Classifier {
    /// What `--precision auto` runs this model in here: the candidate measured fastest per face at
    /// batch 1 (the camera's and the server's case), as `AutoPrecision` keeps it.
    public func autoPrecision(ranges: [Float]?, cacheFile: String? = AutoPrecision.defaultCacheFile) throws -> (InferencePrecision, AutoPrecision.Decision) {
        let candidates = AutoPrecision.inferenceCandidates(hasInt8Ranges: ranges != nil).map(\.rawValue)
        let work = "classify \(String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self)) batch 1, \(DNNL.threads) threads"
        let x = Tensor(shape: spec.inputShape, values: .init(repeating: 0.5, count: spec.inputShape.reduce(1, *)))
        let d = try AutoPrecision.choose(candidates, work: work, cacheFile: cacheFile) { name in
            let p = InferencePrecision(rawValue: name) ?? .fp32
            // fp32 runs the layers as trained (what `--precision fp32` runs); the others lowered.
            guard p != .fp32 else { return AutoPrecision.time { _ = network.forward(x, mode: .inference) } }
            let lowered = try InferenceNetwork(network, inputShape: spec.inputShape, precision: p, ranges: ranges)
            return AutoPrecision.time { _ = lowered.forward(x) }
        }
        return (InferencePrecision(rawValue: d.choice) ?? .fp32, d)
    }
}

extension CPU {
    /// What a measurement ran on: the processor and, where `ONEDNN_MAX_CPU_ISA` caps oneDNN's
    /// kernels, the cap (a Zen 4 running AVX2 kernels measures AVX2's choices, and keeps them apart).
    public static var measuredOn: String { CPUFeatures.kernelCap.map { "\(description), \($0)" } ?? description }
}
