import Foundation

/// A class-prior correction: one offset per class added to the log-probabilities (equivalently to
/// the logits) before the argmax, fitted to maximise a score on validation sets. It moves the
/// decision boundaries between classes the network confuses (Happy and Neutral on closed-mouth
/// smiles, say) without retraining; folded into the last layer's bias it costs nothing at run time.
public enum PriorCalibration {
    /// One validation set: log-probabilities [faces][classes] and the faces' labels.
    public struct Scored: Sendable {
        public var logProbabilities: [[Float]]
        public var labels: [Int]
        public init(logProbabilities: [[Float]], labels: [Int]) {
            self.logProbabilities = logProbabilities
            self.labels = labels
        }

        /// Every other face, starting at `fold` (0 or 1): the halves for a two-fold check.
        public func half(_ fold: Int) -> Scored {
            let keep = labels.indices.filter { $0 % 2 == fold }
            return Scored(logProbabilities: keep.map { logProbabilities[$0] }, labels: keep.map { labels[$0] })
        }
    }

    /// What the offsets maximise: the mean over the sets of each set's accuracy, or of each set's
    /// mean recall over the classes with at least `minimumFaces` faces in it (rare classes count as
    /// much as common ones, so the offsets cannot buy accuracy by never answering them).
    public enum Objective: Sendable, Equatable {
        case accuracy
        case meanRecall(minimumFaces: Int)
    }

    /// Offsets (mean 0) that maximise `objective` over `sets`: coordinate ascent over a grid of
    /// `step` up to `range`, a few rounds; among equally good offsets the smaller one is kept.
    public static func fit(_ sets: [Scored], objective: Objective = .accuracy, range: Float = 2, step: Float = 0.05, rounds: Int = 4) -> [Float] {
        guard let k = sets.first?.logProbabilities.first?.count, k > 0,
              sets.allSatisfy({ $0.logProbabilities.count == $0.labels.count }) else { return [] }
        var bias = [Float](repeating: 0, count: k)
        var best = score(sets, bias, objective)
        let grid = stride(from: -range, through: range, by: step).map { $0 }
        for _ in 0..<rounds {
            var changed = false
            for c in 0..<k {
                var trial = bias
                for v in grid {
                    trial[c] = v
                    let s = score(sets, trial, objective)
                    if s > best + 1e-12 || (abs(s - best) <= 1e-12 && abs(v) < abs(bias[c])) {
                        if s > best + 1e-12 { changed = true }
                        best = max(best, s)
                        bias[c] = v
                    }
                }
            }
            if !changed { break }
        }
        let mean = bias.reduce(0, +) / Float(k)
        return bias.map { $0 - mean }
    }

    /// One set, fitted for accuracy.
    public static func fit(logProbabilities: [[Float]], labels: [Int], range: Float = 2, step: Float = 0.05, rounds: Int = 4) -> [Float] {
        fit([Scored(logProbabilities: logProbabilities, labels: labels)], range: range, step: step, rounds: rounds)
    }

    /// The objective's value (0...1) with `bias` added.
    public static func score(_ sets: [Scored], _ bias: [Float], _ objective: Objective) -> Double {
        guard !sets.isEmpty else { return 0 }
        var total = 0.0
        for set in sets {
            switch objective {
            case .accuracy:
                total += set.labels.isEmpty ? 0 : Double(correct(set.logProbabilities, set.labels, bias)) / Double(set.labels.count)
            case .meanRecall(let minimumFaces):
                total += meanRecall(set, bias, minimumFaces: minimumFaces)
            }
        }
        return total / Double(sets.count)
    }

    /// Mean recall over the classes with at least `minimumFaces` faces (0 if none has).
    public static func meanRecall(_ set: Scored, _ bias: [Float], minimumFaces: Int) -> Double {
        let k = bias.count
        var hits = [Int](repeating: 0, count: k), totals = [Int](repeating: 0, count: k)
        for (row, label) in zip(set.logProbabilities, set.labels) where label >= 0 && label < k {
            totals[label] += 1
            if top(row, bias) == label { hits[label] += 1 }
        }
        let counted = (0..<k).filter { totals[$0] >= max(minimumFaces, 1) }
        guard !counted.isEmpty else { return 0 }
        return counted.map { Double(hits[$0]) / Double(totals[$0]) }.reduce(0, +) / Double(counted.count)
    }

    /// Faces whose argmax of log-probability + bias is their label.
    public static func correct(_ logProbabilities: [[Float]], _ labels: [Int], _ bias: [Float]) -> Int {
        zip(logProbabilities, labels).reduce(0) { $0 + (top($1.0, bias) == $1.1 ? 1 : 0) }
    }

    static func top(_ row: [Float], _ bias: [Float]) -> Int {
        var top = 0
        var topValue = -Float.infinity
        for (c, v) in row.enumerated() where v + bias[c] > topValue { topValue = v + bias[c]; top = c }
        return top
    }
}
