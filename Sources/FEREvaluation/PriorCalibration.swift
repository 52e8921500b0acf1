import Foundation

/// A class-prior correction: one offset per class added to the log-probabilities (equivalently to
/// the logits) before the argmax, fitted to maximise accuracy on a validation split. It moves the
/// decision boundaries between classes the network confuses (Happy and Neutral on closed-mouth
/// smiles, say) without retraining; folded into the last layer's bias it costs nothing at run time.
public enum PriorCalibration {
    /// Offsets (mean 0) that maximise accuracy on `logProbabilities` [faces][classes] against
    /// `labels`: coordinate ascent over a grid of `step` up to `range`, a few rounds; among equally
    /// accurate offsets the smaller one is kept.
    public static func fit(logProbabilities: [[Float]], labels: [Int], range: Float = 2, step: Float = 0.05, rounds: Int = 4) -> [Float] {
        guard let k = logProbabilities.first?.count, k > 0, logProbabilities.count == labels.count else { return [] }
        var bias = [Float](repeating: 0, count: k)
        var best = correct(logProbabilities, labels, bias)
        let grid = stride(from: -range, through: range, by: step).map { $0 }
        for _ in 0..<rounds {
            var changed = false
            for c in 0..<k {
                var trial = bias
                for v in grid {
                    trial[c] = v
                    let n = correct(logProbabilities, labels, trial)
                    if n > best || (n == best && abs(v) < abs(bias[c])) {
                        if n > best { changed = true }
                        best = n
                        bias[c] = v
                    }
                }
            }
            if !changed { break }
        }
        let mean = bias.reduce(0, +) / Float(k)
        return bias.map { $0 - mean }
    }

    /// Faces whose argmax of log-probability + bias is their label.
    public static func correct(_ logProbabilities: [[Float]], _ labels: [Int], _ bias: [Float]) -> Int {
        var n = 0
        for (row, label) in zip(logProbabilities, labels) {
            var top = 0
            var topValue = -Float.infinity
            for (c, v) in row.enumerated() where v + bias[c] > topValue { topValue = v + bias[c]; top = c }
            if top == label { n += 1 }
        }
        return n
    }
}
