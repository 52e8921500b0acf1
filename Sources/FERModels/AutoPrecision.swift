import Foundation
import FEREngine
import FERIO

/// A precision setting: `auto` (measured, `AutoPrecision`) or one arithmetic by name.
public enum PrecisionChoice: String, CaseIterable, Codable, Sendable {
    case auto, fp32, bf16, int8

    public init(_ precision: Precision) { self.init(rawValue: precision.rawValue)! }

    /// The arithmetic named; nil for auto.
    public var fixed: Precision? { Precision(rawValue: rawValue) }
}

/// A precision asked for that cannot run; `option` names the setting (`--precision`, ...).
public struct PrecisionUnavailable: Error, CustomStringConvertible, Equatable {
    public var option: String, reason: String
    public var description: String { "\(option) \(reason)" }
}

/// What a precision setting means on this machine: a named arithmetic, checked against the CPU and
/// the work, or `auto`: the arithmetic measured fastest for the work at hand, among those the CPU
/// runs natively and the work allows. `resolve` is the one place either happens, for the
/// classifier, MTCNN, training and the benchmarks.
///
/// "Sounds fastest" is not a rule: on an AVX-512 BF16 Xeon without AMX, oneDNN's fp32 convolutions
/// take Winograd kernels and its bf16 ones direct kernels, so bf16 trains at half fp32's speed
/// (docs/benchmarks.md). So whenever more than one arithmetic could run, each is timed on the real
/// network and shape for a few steps, once per CPU model and work, and the result is kept in
/// `~/.cache/swift-fer/precision.json`; with one candidate (fp32 for a model without int8 ranges on
/// a CPU without BF16) nothing is timed.
public enum AutoPrecision {
    /// What runs, for the choice: its name in the timing cache, whether it trains, and which
    /// arithmetics it allows.
    public struct Work: Sendable {
        /// The cache key's work: the network, shape, batch and threads.
        public var name: String
        public var trains: Bool
        /// int8 needs activation ranges calibrated for the network.
        public var hasInt8Ranges: Bool
        /// int8 is a candidate of `auto` only where these kernels run (MTCNN asks for VNNI's).
        public var int8Kernels: Bool

        public static func inference(_ name: String, hasInt8Ranges: Bool, int8Kernels: Bool = Precision.int8.isNative) -> Work {
            Work(name: name, trains: false, hasInt8Ranges: hasInt8Ranges, int8Kernels: int8Kernels)
        }
        public static func training(_ name: String) -> Work { Work(name: name, trains: true, hasInt8Ranges: false, int8Kernels: false) }

        /// What `auto` times, fp32 first (it wins ties): the arithmetics the CPU runs natively that
        /// the work allows. Which is fastest is measured, never assumed.
        public var candidates: [Precision] {
            [.fp32] + (!trains && hasInt8Ranges && int8Kernels ? [.int8] : []) + (Precision.bf16.isNative ? [.bf16] : [])
        }

        /// Why `precision`, named, cannot run this work here; nil when it can.
        public func problem(_ precision: Precision) -> String? {
            if trains, !precision.trains { return "\(precision.rawValue) is for inference: train in fp32 or bf16 (or auto)" }
            if precision == .int8, !hasInt8Ranges { return "int8: \(InferenceError.notCalibrated)" }
            return precision.unavailableReason
        }
    }

    /// `choice` for `work`: the named arithmetic if it can run (else `PrecisionUnavailable`, naming
    /// `option`), or `auto`'s choice among `work.candidates`; the decision says how auto chose.
    public static func resolve(_ choice: PrecisionChoice, for work: Work, option: String, cacheFile: String? = defaultCacheFile,
                               measure: (Precision) throws -> Double) throws -> (precision: Precision, decision: Decision?) {
        if let named = choice.fixed {
            if let reason = work.problem(named) { throw PrecisionUnavailable(option: option, reason: reason) }
            return (named, nil)
        }
        let d = try self.choose(work.candidates, work: work.name, cacheFile: cacheFile, measure: measure)
        return (d.choice, d)
    }

    /// A choice and what it rests on.
    public struct Decision: Codable, Sendable, Equatable {
        public var choice: Precision
        /// Seconds per step of each candidate timed (empty when there was nothing to compare).
        public var seconds: [String: Double]
        /// True when the timings came from the cache.
        public var cached: Bool
        /// One line for logs and configs: what was picked, and why.
        public var reason: String {
            guard seconds.count > 1 else { return "\(choice.rawValue): the only arithmetic this CPU runs natively here" }
            let t = seconds.sorted { $0.value < $1.value }.map { String(format: "%@ %.2f ms", $0.key, 1000 * $0.value) }.joined(separator: ", ")
            return "\(choice.rawValue): fastest measured on \(CPU.measuredOn) (\(t) per step\(cached ? ", cached" : ""))"
        }
    }

    /// The fastest of the timed candidates; a tie (within 3%) goes to the earlier candidate, so
    /// fp32, listed first, is never given up for noise.
    public static func fastest(_ timings: [(precision: Precision, seconds: Double)]) -> Precision? {
        guard var best = timings.first else { return nil }
        for t in timings.dropFirst() where t.seconds.isFinite && t.seconds < best.seconds * 0.97 { best = t }
        return best.precision
    }

    /// Picks among `candidates` (fp32 first): the only one, the cached measurement for this CPU and
    /// `work`, or a new measurement (`measure` returns seconds per step), which is then cached.
    /// `cacheFile` nil: measure every time.
    static func choose(_ candidates: [Precision], work: String, cacheFile: String? = defaultCacheFile,
                       measure: (Precision) throws -> Double) rethrows -> Decision {
        guard candidates.count > 1 else { return Decision(choice: candidates.first ?? .fp32, seconds: [:], cached: false) }
        guard let cacheFile else { return try measureAll(candidates, measure) }
        // One process at a time looks up, measures and writes: two runs started together (two MPI
        // ranks, parallel tests) would otherwise time each other's load, and the last to write would
        // drop the other's entry, so a later run could measure again and choose differently.
        return try withFileLock(cacheFile + ".lock") {
            let key = "\(CPU.measuredOn) | \(work) | \(candidates.map(\.rawValue).joined(separator: ","))"
            var table = load(cacheFile)
            if let seconds = table[key], Set(seconds.keys) == Set(candidates.map(\.rawValue)),
               let choice = fastest(candidates.map { ($0, seconds[$0.rawValue]!) }) {
                return Decision(choice: choice, seconds: seconds, cached: true)
            }
            let d = try measureAll(candidates, measure)
            table[key] = d.seconds
            try? AtomicFile.write(Data((try? JSONEncoder.sorted.encode(table)) ?? Data()), to: cacheFile)  // a cache that cannot be written is measured again next time
            return d
        }
    }

    static func measureAll(_ candidates: [Precision], _ measure: (Precision) throws -> Double) rethrows -> Decision {
        var seconds: [String: Double] = [:]
        for c in candidates { seconds[c.rawValue] = try measure(c) }
        return Decision(choice: fastest(candidates.map { ($0, seconds[$0.rawValue]!) }) ?? candidates[0], seconds: seconds, cached: false)
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

extension Classifier {
    /// The arithmetic `choice` runs this model in here (`option` names the setting in errors);
    /// `auto` times each candidate per face at batch 1 (the camera's and the server's case).
    public func resolvePrecision(_ choice: PrecisionChoice, ranges: [Float]?, option: String = "--precision",
                                 cacheFile: String? = AutoPrecision.defaultCacheFile) throws -> (precision: Precision, decision: AutoPrecision.Decision?) {
        let work = AutoPrecision.Work.inference("classify \(String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self)) batch 1, \(DNNL.threads) threads",
                                                hasInt8Ranges: ranges != nil)
        let x = Tensor(shape: spec.inputShape, values: .init(repeating: 0.5, count: spec.inputShape.reduce(1, *)))
        return try AutoPrecision.resolve(choice, for: work, option: option, cacheFile: cacheFile) { p in
            // fp32 runs the layers as trained (what `--precision fp32` runs); the others lowered.
            guard p != .fp32 else { return AutoPrecision.time { _ = network.forward(x, mode: .inference) } }
            let lowered = try InferenceNetwork(network, inputShape: spec.inputShape, precision: p, ranges: ranges)
            return AutoPrecision.time { _ = lowered.forward(x) }
        }
    }
}

extension CPU {
    /// What a measurement ran on: the processor and, where `ONEDNN_MAX_CPU_ISA` caps oneDNN's
    /// kernels, the cap (a Zen 4 running AVX2 kernels measures AVX2's choices, and keeps them apart).
    public static var measuredOn: String { CPUFeatures.kernelCap.map { "\(description), \($0)" } ?? description }
}
