import Foundation
import FEREngine

/// The images an epoch trains on when several datasets are mixed with stated weights: dataset i
/// gives weight_i / (sum of weights) of every epoch's `epochSize` images. Each dataset is walked
/// through seeded permutations that carry on from epoch to epoch, so a small dataset drawn often
/// is seen evenly (every image once before any twice), and a large one drawn rarely is still seen
/// whole over the epochs. The order is fixed by (seed, epoch), as `TrainingBatches.order` is.
///
/// `balancingClasses` splits each dataset into one part per class, so that rare expressions are
/// drawn more often than the data holds them (`--class-balance`).
public struct MixedSampling: Codable, Sendable, Equatable {
    public struct Part: Codable, Sendable, Equatable {
        /// The dataset's name (a class's part keeps its dataset's name and adds `label`).
        public var name: String
        /// The part's images: `start ..< start + count` of the joined dataset, or `members` where set.
        public var start: Int, count: Int
        public let members: [Int]?
        /// The class of every image of a class's part.
        public let label: Int?
        public var weight: Double
        public init(name: String, start: Int, count: Int, weight: Double) {
            self.name = name; self.start = start; self.count = count; self.members = nil; self.label = nil; self.weight = weight
        }
        /// A part made of the given images of the joined dataset, all of class `label`.
        public init(name: String, members: [Int], label: Int, weight: Double) {
            self.name = name; self.start = 0; self.count = members.count; self.members = members; self.label = label; self.weight = weight
        }
        /// The joined dataset's index of the part's `k`th image.
        public func image(_ k: Int) -> Int { members?[k] ?? start + k }
    }

    public var parts: [Part]
    public var epochSize: Int

    public init(parts: [Part], epochSize: Int) {
        self.parts = parts
        self.epochSize = epochSize
    }

    /// What is wrong with it, if anything.
    public var problem: String? {
        if epochSize < 1 { return "the epoch size must be at least 1, got \(epochSize)" }
        for p in parts {
            if !(p.weight.isFinite && p.weight >= 0) { return "the weight of \(p.name) must be a number of 0 or more, got \(p.weight)" }
            if p.count < 1 && p.weight > 0 { return "\(p.name) has no training images but weight \(p.weight)" }
        }
        if !parts.contains(where: { $0.weight > 0 }) { return "at least one dataset needs a weight above 0" }
        return nil
    }

    /// Images per epoch from each part: the weights' shares of `epochSize`, rounded so they add up.
    public var quotas: [Int] {
        let total = parts.map(\.weight).reduce(0, +)
        let exact = parts.map { $0.weight / total * Double(epochSize) }
        var q = exact.map { Int($0.rounded(.down)) }
        // The images rounding left over go to the largest remainders.
        let order = exact.indices.sorted { exact[$0] - Double(q[$0]) > exact[$1] - Double(q[$1]) }
        for i in order.prefix(epochSize - q.reduce(0, +)) { q[i] += 1 }
        return q
    }

    /// The same draw with each dataset split by class (`labels`: the joined dataset's classes), its
    /// weight shared among its classes in proportion to count^(1 - balance): 0 keeps the data's
    /// class shares, 0.5 draws each class by the square root of its count, 1 draws every class
    /// of a dataset equally often. Classes a dataset lacks get nothing.
    public func balancingClasses(_ balance: Double, labels: [Int]) -> MixedSampling {
        var split: [Part] = []
        for part in parts {
            let byClass = Dictionary(grouping: (0..<part.count).map(part.image), by: { labels[$0] }).sorted { $0.key < $1.key }
            let shares = byClass.map { pow(Double($0.value.count), 1 - balance) }
            let total = shares.reduce(0, +)
            for ((label, members), share) in zip(byClass, shares) {
                split.append(Part(name: part.name, members: members, label: label, weight: part.weight * share / total))
            }
        }
        return MixedSampling(parts: split, epochSize: epochSize)
    }

    /// Images per epoch from each dataset (parts of one dataset added up), in order of first appearance.
    public var quotasByDataset: [(name: String, quota: Int)] {
        var out: [(name: String, quota: Int)] = []
        for (part, quota) in zip(parts, quotas) {
            if let i = out.firstIndex(where: { $0.name == part.name }) { out[i].quota += quota } else { out.append((part.name, quota)) }
        }
        return out
    }

    /// The joined dataset's indices for `epoch`, shuffled.
    public func order(seed: UInt64, epoch: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(epochSize)
        for (i, (part, quota)) in zip(parts, quotas).enumerated() where quota > 0 {
            // Draws epoch * quota ..< (epoch + 1) * quota of the part's endless sequence of permutations.
            let first = epoch * quota
            var pass = -1, permutation: [Int] = []
            for k in first ..< first + quota {
                if k / part.count != pass {
                    pass = k / part.count
                    var rng = SplitMix64(seed: seed).derived(0x31C5 &+ UInt64(i) << 40 &+ UInt64(pass))
                    permutation = Array(0..<part.count)
                    permutation.shuffle(using: &rng)
                }
                out.append(part.image(permutation[k % part.count]))
            }
        }
        var rng = SplitMix64(seed: seed).derived(0x5A3 &+ UInt64(bitPattern: Int64(epoch)))
        out.shuffle(using: &rng)
        return out
    }
}
