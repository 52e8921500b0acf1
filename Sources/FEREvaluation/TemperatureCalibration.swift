import Foundation

/// Temperature scaling (Guo et al. 2017): one number T divides the logits before the softmax,
/// fitted to minimise the negative log-likelihood on a validation split. Every argmax, and so the
/// accuracy, stays as it was; what changes is that a confidence means what it says (of the faces
/// labelled with 80% confidence, about 80% are right), which is what an app that thresholds or
/// shows the confidence needs. Networks trained with cross-entropy are usually over-confident.
public enum TemperatureCalibration {
    /// Mean negative log-likelihood of `labels` under softmax(logits / temperature). Rows may be any
    /// per-face shift of the logits (log-probabilities do), since the softmax ignores it.
    public static func negativeLogLikelihood(logits: [[Float]], labels: [Int], temperature: Float) -> Double {
        guard !logits.isEmpty else { return 0 }
        var total = 0.0
        for (row, label) in zip(logits, labels) {
            let scaled = row.map { Double($0 / temperature) }
            let top = scaled.max() ?? 0
            let logSum = top + log(scaled.reduce(0) { $0 + exp($1 - top) })
            total += logSum - scaled[label]
        }
        return total / Double(logits.count)
    }

    /// Mean negative log-likelihood of `labels` under probabilities already computed (each clamped
    /// at 1e-12, so that one confident mistake is a large loss rather than infinity).
    public static func negativeLogLikelihood(probabilities: [[Float]], labels: [Int]) -> Double {
        guard !probabilities.isEmpty else { return 0 }
        let total = zip(probabilities, labels).reduce(0.0) { $0 - log(Double(max($1.0[$1.1], 1e-12))) }
        return total / Double(probabilities.count)
    }

    /// The temperature in [0.05, 20] that minimises the negative log-likelihood. NLL is convex in
    /// 1/T, so a golden-section search over 1/T finds the minimum.
    public static func fit(logits: [[Float]], labels: [Int]) -> Float {
        guard !logits.isEmpty, logits.count == labels.count else { return 1 }
        let nll = { (inverse: Double) in negativeLogLikelihood(logits: logits, labels: labels, temperature: Float(1 / inverse)) }
        let ratio = (5.0.squareRoot() - 1) / 2
        var a = 1 / 20.0, b = 1 / 0.05
        var c = b - ratio * (b - a), d = a + ratio * (b - a)
        var fc = nll(c), fd = nll(d)
        for _ in 0..<60 where b - a > 1e-4 {
            if fc < fd { b = d; d = c; fd = fc; c = b - ratio * (b - a); fc = nll(c) }
            else { a = c; c = d; fc = fd; d = a + ratio * (b - a); fd = nll(d) }
        }
        return Float(1 / ((a + b) / 2))
    }

    /// softmax(row / temperature).
    public static func probabilities(_ row: [Float], temperature: Float) -> [Float] {
        let scaled = row.map { $0 / temperature }
        let top = scaled.max() ?? 0
        let e = scaled.map { exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// One confidence bin: how many faces had their top confidence in it, their mean confidence
    /// and the share of them that were right.
    public struct Bin: Sendable {
        public var lower, upper: Double
        public var count: Int
        public var confidence: Double
        public var accuracy: Double
    }

    /// Faces binned by their top confidence into `bins` equal-width bins over [0, 1].
    public static func reliability(probabilities: [[Float]], labels: [Int], bins: Int = 15) -> [Bin] {
        let bins = max(bins, 1)
        var count = [Int](repeating: 0, count: bins), right = [Int](repeating: 0, count: bins)
        var confidence = [Double](repeating: 0, count: bins)
        for (row, label) in zip(probabilities, labels) {
            guard let top = row.indices.max(by: { row[$0] < row[$1] }) else { continue }
            let p = Double(row[top])
            let bin = min(bins - 1, max(0, Int(p * Double(bins))))
            count[bin] += 1
            confidence[bin] += p
            if top == label { right[bin] += 1 }
        }
        return (0..<bins).map { b in
            let n = count[b]
            return Bin(lower: Double(b) / Double(bins), upper: Double(b + 1) / Double(bins), count: n,
                       confidence: n == 0 ? 0 : confidence[b] / Double(n), accuracy: n == 0 ? 0 : Double(right[b]) / Double(n))
        }
    }

    /// Expected calibration error: the mean over confidence bins of |accuracy - mean confidence|,
    /// weighted by the bin's share of faces.
    public static func expectedCalibrationError(probabilities: [[Float]], labels: [Int], bins: Int = 15) -> Double {
        expectedCalibrationError(reliability(probabilities: probabilities, labels: labels, bins: bins))
    }

    public static func expectedCalibrationError(_ bins: [Bin]) -> Double {
        let n = bins.reduce(0) { $0 + $1.count }
        guard n > 0 else { return 0 }
        return bins.reduce(0) { $0 + Double($1.count) / Double(n) * abs($1.accuracy - $1.confidence) }
    }
}
