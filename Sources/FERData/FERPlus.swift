import Foundation
import FEREngine
import FERIO

/// FER+ crowd labels (Microsoft's `fer2013new.csv`): ten taggers voted per FER2013 image over
/// neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF (not a face).
/// Rows match fer2013.csv by position. Votes are mapped onto FER2013's seven classes; contempt,
/// unknown and not-a-face are dropped, and so are rows FER+ leaves unnamed.
public struct FERPlus {
    /// Votes per row in FER2013's class order (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral).
    public let votes: [[Float]]
    /// False where FER+ gives no image name (FER+'s own scripts skip those rows).
    public let named: [Bool]
    /// Votes for contempt, unknown and not-a-face.
    public let otherVotes: [Float]

    public enum Mode: String, CaseIterable, Codable, Sendable {
        /// The class with the most votes, where it is unique and beats contempt/unknown/NF.
        case majority
        /// The vote distribution as a soft target (cross-entropy against it); label = its top class.
        case distribution
        /// FER2013's label kept, the target a blend of its one-hot and the FER+ votes (weight
        /// `ferplusWeight`): the crowd's nuance without leaving FER2013's labelling. Keeps every row.
        case blend
    }

    static let header = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]
    /// FER+ column (after the two name columns) feeding each FER2013 class.
    static let columnOfClass = [4, 5, 6, 1, 3, 2, 0]

    public static func load(_ path: String) throws -> FERPlus {
        let bytes = try FileBytes.read(path)
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first else { throw DataError.unreadable(path, reason: "the file is empty") }
        guard first.split(separator: ",", omittingEmptySubsequences: false).map(String.init) == header else {
            throw DataError.badHeader(path, found: String(first.prefix(80)), expected: header.joined(separator: ","))
        }
        var votes: [[Float]] = [], named: [Bool] = [], other: [Float] = []
        for (i, line) in lines.dropFirst().enumerated() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count == 12 else { throw DataError.badRow(path, line: i + 2, reason: "\(f.count) columns, expected 12") }
            guard Split(rawValue: String(f[0])) != nil else { throw DataError.badRow(path, line: i + 2, reason: "unknown Usage '\(f[0])'") }
            let v = try f[2...].map { s -> Float in
                guard let x = Int(s), x >= 0, x <= 10 else { throw DataError.badRow(path, line: i + 2, reason: "vote count '\(s)' is not 0-10") }
                return Float(x)
            }
            votes.append(columnOfClass.map { v[$0] })
            other.append(v[7] + v[8] + v[9])
            named.append(!f[1].isEmpty)
        }
        return FERPlus(votes: votes, named: named, otherVotes: other)
    }

    /// Relabels `data` (loaded from fer2013.csv, so it knows its row numbers) and drops rows FER+ rejects.
    public func relabel(_ data: FaceDataset, mode: Mode, weight: Float = 0.5) throws -> FaceDataset {
        guard !data.rowNumbers.isEmpty else {
            throw DataError.mismatch("FER+", reason: "FER+ labels join fer2013.csv by row, so they need the CSV layout, not image folders")
        }
        guard let maxRow = data.rowNumbers.max(), maxRow < votes.count else {
            throw DataError.mismatch("FER+", reason: "fer2013new.csv has \(votes.count) rows; fer2013.csv has more")
        }
        if mode == .blend { return blend(data, weight: weight) }
        var keep: [Int] = [], labels: [Int] = [], targets: [Float] = []
        for (i, row) in data.rowNumbers.enumerated() where named[row] {
            let v = votes[row]
            let top = v.max() ?? 0
            guard top > 0, top > otherVotes[row] || mode == .distribution else { continue }
            let winners = v.indices.filter { v[$0] == top }
            if mode == .majority && winners.count != 1 { continue }
            keep.append(i)
            labels.append(winners[0])
            let total = v.reduce(0, +)
            targets.append(contentsOf: v.map { $0 / total })
        }
        var out = data.subset(keep)
        out.labels = labels
        out.targets = mode == .distribution ? targets : nil
        return out
    }

    /// Soft targets (1 - weight) x one-hot(FER2013 label) + weight x FER+ vote shares; rows FER+
    /// leaves unnamed or gives no vote among the seven classes keep the one-hot target.
    func blend(_ data: FaceDataset, weight: Float) -> FaceDataset {
        let k = data.classNames.count
        var targets = [Float](repeating: 0, count: data.count * k)
        for (i, row) in data.rowNumbers.enumerated() {
            let v = votes[row], total = v.reduce(0, +)
            let w = named[row] && total > 0 ? weight : 0
            for c in 0..<k { targets[i * k + c] = (c == data.labels[i] ? 1 - w : 0) + (w > 0 ? w * v[c] / total : 0) }
        }
        var out = data
        out.targets = targets
        return out
    }
}
