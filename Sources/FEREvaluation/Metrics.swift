import Foundation
import FERIO

/// Classification metrics from labels and predictions: accuracy, per-class precision, recall, F1
/// and support, their macro and support-weighted averages, and the confusion matrix
/// (rows = true class, columns = predicted class). A prediction of -1 means none was made (a photo
/// with no face, say): it counts as wrong and sits in no column.
public struct ClassificationReport: Codable, Sendable {
    public struct ClassRow: Codable, Sendable {
        public var name: String
        public var precision, recall, f1: Double
        public var support: Int
        /// The 95% interval of a class's recall (Wilson's score interval); nil for a class without
        /// examples and for the averages (the mean recall's interval is `meanRecall`).
        public var recallInterval: [Double]?
    }

    /// The normal quantile of a two-sided 95% interval.
    public static let z95 = 1.959964

    /// Wilson's 95% score interval for `successes` of `n` (good at small n and near 0 or 1, where
    /// the normal interval is not); nil for n = 0.
    public static func wilson(_ successes: Int, of n: Int, z: Double = z95) -> [Double]? {
        guard n > 0 else { return nil }
        let p = Double(successes) / Double(n), nn = Double(n), z2 = z * z
        let centre = (p + z2 / (2 * nn)) / (1 + z2 / nn)
        let half = z * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot() / (1 + z2 / nn)
        return [max(0, centre - half), min(1, centre + half)]
    }

    /// The mean recall over the classes that have examples, with the 95% interval of that mean
    /// (classes independent: variance sum r(1 - r) / n over classes, over their count squared).
    public var meanRecall: (value: Double, interval: [Double])? { meanRecall(over: classes.map(\.name)) }

    /// `meanRecall` over the named classes (matched without regard to case) that have examples.
    public func meanRecall(over names: [String]) -> (value: Double, interval: [Double])? {
        let wanted = Set(names.map { $0.lowercased() })
        let present = classes.filter { $0.support > 0 && wanted.contains($0.name.lowercased()) }
        guard !present.isEmpty else { return nil }
        let k = Double(present.count), mean = present.reduce(0) { $0 + $1.recall } / k
        let variance = present.reduce(0) { $0 + $1.recall * (1 - $1.recall) / Double($1.support) } / (k * k)
        let half = Self.z95 * variance.squareRoot()
        return (mean, [max(0, mean - half), min(1, mean + half)])
    }

    public var classes: [ClassRow]
    public var accuracy: Double
    public var macro: ClassRow
    public var weighted: ClassRow
    public var confusion: [[Int]]
    public var count: Int

    public init(labels: [Int], predictions: [Int], classNames: [String]) {
        precondition(labels.count == predictions.count, "\(labels.count) labels, \(predictions.count) predictions")
        let k = classNames.count
        var m = [[Int]](repeating: .init(repeating: 0, count: k), count: k)
        var support = [Int](repeating: 0, count: k)
        for (y, p) in zip(labels, predictions) {
            support[y] += 1
            if p >= 0 { m[y][p] += 1 }
        }
        confusion = m
        count = labels.count
        accuracy = labels.isEmpty ? 0 : Double((0..<k).reduce(0) { $0 + m[$1][$1] }) / Double(labels.count)
        let rows = (0..<k).map { c -> ClassRow in
            let tp = Double(m[c][c])
            let predicted = Double((0..<k).reduce(0) { $0 + m[$1][c] })
            let actual = Double(support[c])
            let p = predicted > 0 ? tp / predicted : 0, r = actual > 0 ? tp / actual : 0
            return ClassRow(name: classNames[c], precision: p, recall: r, f1: p + r > 0 ? 2 * p * r / (p + r) : 0, support: Int(actual),
                            recallInterval: Self.wilson(m[c][c], of: support[c]))
        }
        classes = rows
        let n = Double(max(labels.count, 1)), count = labels.count
        func avg(_ w: [Double], _ name: String) -> ClassRow {
            let total = max(w.reduce(0, +), 1e-12)
            func mean(_ f: (ClassRow) -> Double) -> Double { zip(rows, w).reduce(0) { $0 + f($1.0) * $1.1 } / total }
            return ClassRow(name: name, precision: mean(\.precision), recall: mean(\.recall), f1: mean(\.f1), support: count)
        }
        // Over the classes that occur, in the labels or the predictions (as scikit-learn does): a photo
        // set of two expressions is not averaged with five empty rows.
        let occurs = (0..<k).map { c in support[c] > 0 || (0..<k).contains { m[$0][c] > 0 } }
        macro = avg(occurs.map { $0 ? 1 : 0 }, "macro avg")
        weighted = avg(rows.map { Double($0.support) / n }, "weighted avg")
        meanRecallOverPresent = meanRecall.map { [$0.value] + $0.interval }
    }

    /// The report of several reports' examples together (cross-validation folds, say): their
    /// confusion matrices and supports added. Throws, naming the report by `names` (else its place),
    /// if their classes differ.
    public static func pooled(_ reports: [ClassificationReport], names reportNames: [String] = []) throws -> ClassificationReport {
        guard let first = reports.first else { throw DataError.mismatch("reports", reason: "nothing to pool") }
        let names = first.classes.map(\.name)
        var labels: [Int] = [], predictions: [Int] = []
        for (i, r) in reports.enumerated() {
            let place = i < reportNames.count ? reportNames[i] : "report \(i + 1)"
            guard r.classes.map(\.name) == names, r.confusion.count == names.count, r.confusion.allSatisfy({ $0.count == names.count }) else {
                throw DataError.mismatch(place, reason: "its classes \(r.classes.map(\.name)) are not the first report's \(names)")
            }
            for (c, row) in r.confusion.enumerated() {
                for (p, n) in row.enumerated() {
                    labels += repeatElement(c, count: n); predictions += repeatElement(p, count: n)
                }
                // Examples of the class with no answer (a photo without a face) sit in no column.
                let unanswered = r.classes[c].support - row.reduce(0, +)
                guard unanswered >= 0 else {
                    throw DataError.mismatch(place, reason: "\(names[c]) has \(r.classes[c].support) examples but \(row.reduce(0, +)) in its confusion row")
                }
                labels += repeatElement(c, count: unanswered); predictions += repeatElement(-1, count: unanswered)
            }
        }
        return ClassificationReport(labels: labels, predictions: predictions, classNames: names)
    }

    /// `meanRecall` as stored in JSON: [mean, low, high].
    public var meanRecallOverPresent: [Double]?

    /// The report as a fixed-width text table, then the confusion matrix.
    public var table: String {
        let nameWidth = max(12, (classes.map(\.name.count).max() ?? 0) + 2)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        func row(_ r: ClassRow) -> String {
            r.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + pad(String(format: "%.3f", r.precision), 10) + pad(String(format: "%.3f", r.recall), 10)
                + pad(String(format: "%.3f", r.f1), 10) + pad("\(r.support)", 9)
                + (r.recallInterval.map { pad(String(format: "%.3f-%.3f", $0[0], $0[1]), 16) } ?? "")
        }
        var lines = ["".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + pad("precision", 10) + pad("recall", 10) + pad("f1", 10) + pad("support", 9)
                     + pad("recall 95% CI", 16)]
        lines += classes.map(row)
        lines.append("")
        lines.append("accuracy".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + pad("", 20) + pad(String(format: "%.4f", accuracy), 10) + pad("\(count)", 9))
        lines.append(row(macro))
        lines.append(row(weighted))
        if let m = meanRecall {
            lines.append(String(format: "mean recall over the %d classes with examples: %.3f (95%% CI %.3f-%.3f)",
                                classes.filter { $0.support > 0 }.count, m.value, m.interval[0], m.interval[1]))
        }
        lines.append("")
        lines.append("confusion matrix (rows: true, columns: predicted)")
        let short = classes.map { String($0.name.prefix(8)) }
        lines.append("".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + short.map { pad($0, 9) }.joined())
        for (i, r) in confusion.enumerated() {
            lines.append(classes[i].name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + r.map { pad("\($0)", 9) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
