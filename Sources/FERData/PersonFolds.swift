import FEREngine
import Foundation

/// Person-disjoint folds of labelled photos, for cross-validation on photo sets whose rare
/// expressions are too few in any one validation folder (web-photos/val: 0 Disgust, 14 Sad).
/// Every photo of one person lands in the same fold, so no fold is validated on a face its training
/// saw; people are dealt to folds rarest expression first, so that each fold holds a similar share
/// of every expression.
public enum PersonFolds {
    /// The person a photo shows, from its file name: the name without its extension and trailing
    /// photo number (`Tim_Henman_0001.jpg` -> `Tim_Henman`, `anna-2.png` -> `anna`); a name
    /// without a number is a person of its own.
    public static func person(of path: String) -> String {
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var end = stem.endIndex
        while end > stem.startIndex, stem[stem.index(before: end)].isNumber { end = stem.index(before: end) }
        guard end < stem.endIndex else { return stem }  // no trailing number
        while end > stem.startIndex, "_- ".contains(stem[stem.index(before: end)]) { end = stem.index(before: end) }
        return end > stem.startIndex ? String(stem[..<end]) : stem
    }

    /// The fold (0..<k) of each photo. People are shuffled by `seed`, then dealt rarest expression
    /// first, each to the fold that holds fewest photos of that expression so far (then fewest
    /// photos): deterministic for a seed.
    public static func assign(_ photos: [(path: String, label: Int)], folds k: Int, seed: UInt64) -> [Int] {
        precondition(k >= 2, "cross-validation needs at least 2 folds")
        var byPerson: [String: [Int]] = [:]
        for (i, p) in photos.enumerated() { byPerson[person(of: p.path), default: []].append(i) }
        let classes = (photos.map(\.label).max() ?? 0) + 1
        var total = [Int](repeating: 0, count: classes)
        for p in photos { total[p.label] += 1 }
        // The expression that decides where a person goes: their rarest one.
        func rarest(_ members: [Int]) -> Int { members.map { photos[$0].label }.min { total[$0] < total[$1] } ?? 0 }
        var rng = SplitMix64(seed: seed)
        let people = byPerson.keys.sorted().shuffled(using: &rng)
            .map { (name: $0, members: byPerson[$0]!, key: rarest(byPerson[$0]!)) }
            .enumerated().sorted { a, b in total[a.element.key] != total[b.element.key] ? total[a.element.key] < total[b.element.key] : a.offset < b.offset }
            .map(\.element)
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: k), sizes = [Int](repeating: 0, count: k)
        var fold = [Int](repeating: 0, count: photos.count)
        for p in people {
            let f = (0..<k).min { (counts[$0][p.key], sizes[$0], $0) < (counts[$1][p.key], sizes[$1], $1) }!
            for i in p.members { fold[i] = f; counts[f][photos[i].label] += 1 }
            sizes[f] += p.members.count
        }
        return fold
    }
}
