import FERDistributed
import FEREngine
import FERIO
import FERModels
import Foundation

extension Trainer {
    /// The arithmetic a run of `spec` trains in: `choice` if named and it trains here, else `auto`'s
    /// measurement of a few steps at `batch`. Under MPI, rank 0 alone measures and every rank
    /// trains in its choice: ranks timing at once would disturb each other's figures, and could
    /// choose apart. The decision is rank 0's (nil on the others and for a named choice).
    public static func resolvePrecision(_ choice: PrecisionChoice, spec: ModelSpec, batch: Int, communicator: Communicator = .single,
                                        cacheFile: String? = AutoPrecision.defaultCacheFile) throws -> (precision: Precision, decision: AutoPrecision.Decision?) {
        let work = AutoPrecision.Work.training("train \(String(decoding: try JSONEncoder.sorted.encode(spec), as: UTF8.self)) batch \(batch), \(DNNL.threads) threads")
        guard choice == .auto else { return try AutoPrecision.resolve(choice, for: work, option: "--precision") { _ in 0 } }
        let measured = communicator.isRoot
            ? try AutoPrecision.resolve(.auto, for: work, option: "--precision", cacheFile: cacheFile) { p in
                try Benchmark.run(spec: spec, mode: .train, batch: batch, steps: 3, precision: p, warmup: 1).millisecondsPerBatch / 1000
            } : nil
        guard communicator.size > 1 else { return measured ?? (.fp32, nil) }
        // Rank 0's choice to every rank: its index, the others adding 0.
        var index = [Double(Precision.allCases.firstIndex(of: measured?.precision ?? .fp32) ?? 0) * (communicator.isRoot ? 1 : 0)]
        try communicator.sum(&index)
        return (Precision.allCases[Int(index[0])], measured?.decision)
    }
}
