import Foundation
import FEREngine

/// One mini-batch: images [n, 1, size, size] in [0, 1], labels, and optional target distributions.
public struct Batch: Sendable {
    public var images: [Float]
    public var labels: [Int]
    public var targets: [Float]?
    public var size: Int
    public var count: Int { labels.count }

    public init(images: [Float], labels: [Int], targets: [Float]? = nil, size: Int) {
        self.images = images
        self.labels = labels
        self.targets = targets
        self.size = size
    }

    /// Rows in the image tensor: `count`, or `count x views` for test-time augmentation.
    public var rows: Int { images.count / (size * size) }

    public func tensor() -> Tensor { Tensor(shape: [rows, 1, size, size], values: images) }
}

/// Shuffled, augmented training batches, prepared on a background thread one batch ahead of the
/// training loop. The order and every augmentation are fixed by (seed, epoch), so runs repeat
/// exactly and a resumed run continues where it stopped.
public final class TrainingBatches: Sequence {
    let data: FaceDataset
    let batchSize, size: Int
    let augmentation: Augmentation
    let seed: UInt64
    let epoch: Int
    let skip: Int
    let shard: (index: Int, count: Int)
    let mixup: Float
    let sampling: MixedSampling?

    /// `skip` leaves out the first batches of the epoch (for resuming mid-epoch). `shard` makes each
    /// batch only this rank's slice of the global batch (data-parallel training): the images, their
    /// order and their augmentation are those the single process would use for those rows.
    /// `sampling` draws each epoch from several datasets joined in `data` with stated weights;
    /// without it an epoch is every image once.
    public init(_ data: FaceDataset, batchSize: Int, size: Int, augmentation: Augmentation, seed: UInt64, epoch: Int, skip: Int = 0,
                shard: (index: Int, count: Int) = (0, 1), mixup: Float = 0, sampling: MixedSampling? = nil) {
        self.data = data
        self.batchSize = batchSize
        self.size = size
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = epoch
        self.skip = skip
        self.shard = shard
        self.mixup = mixup
        self.sampling = sampling
    }

    /// Full batches per epoch (the remainder is dropped so BatchNorm never sees a tiny batch).
    public var batchesPerEpoch: Int { Self.batchesPerEpoch(data.count, batchSize: batchSize, sampling: sampling) }

    public static func batchesPerEpoch(_ count: Int, batchSize: Int, sampling: MixedSampling?) -> Int {
        Swift.max(1, (sampling?.epochSize ?? count) / batchSize)
    }

    public static func order(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: seed).derived(UInt64(bitPattern: Int64(epoch)) &+ 1)
        var idx = Array(0..<count)
        idx.shuffle(using: &rng)
        return idx
    }

    func make(_ b: Int, _ order: [Int]) -> Batch {
        let first = b * batchSize, rows = Swift.min(first + batchSize, order.count) - first
        let lo = first + rows * shard.index / shard.count, hi = first + rows * (shard.index + 1) / shard.count
        let n = hi - lo, px = size * size, k = data.classNames.count
        var images = [Float](repeating: 0, count: n * px)
        var labels = [Int](repeating: 0, count: n)
        var targets: [Float]? = data.targets == nil ? nil : .init(repeating: 0, count: n * k)
        let base = SplitMix64(seed: seed).derived(0xA06 &+ UInt64(epoch) << 32)
        data.images.withUnsafeBufferPointer { src in
            images.withUnsafeMutableBufferPointer { dst in
                for j in 0..<n {
                    let i = order[lo + j]
                    // Mixed epochs may draw an image twice: each draw gets its own augmentation.
                    var rng = base.derived(sampling == nil ? UInt64(i) : UInt64(lo + j) | 1 << 62)
                    augmentation.apply(src.baseAddress! + i * data.pixelsPerImage, side: data.side,
                                       into: dst.baseAddress! + j * px, size: size, rng: &rng)
                    labels[j] = data.labels[i]
                    if let t = data.targets { for c in 0..<k { targets![j * k + c] = t[i * k + c] } }
                }
            }
        }
        let batch = Batch(images: images, labels: labels, targets: targets, size: size)
        guard mixup > 0 else { return batch }
        // Pairs are drawn within this rank's rows (under MPI, within each shard).
        var rng = SplitMix64(seed: seed).derived(0x313 &+ UInt64(epoch) << 32 &+ UInt64(b) << 8 &+ UInt64(shard.index))
        return Mixup.apply(batch, alpha: mixup, classes: k, rng: &rng)
    }

    public func makeIterator() -> AnyIterator<Batch> {
        let order = sampling?.order(seed: seed, epoch: epoch) ?? Self.order(count: data.count, seed: seed, epoch: epoch)
        let total = batchesPerEpoch
        var next = skip
        let queue = DispatchQueue(label: "fer.batches")
        var pending: DispatchWorkItem?
        var result: Batch?
        func schedule(_ b: Int) {
            guard b < total else { pending = nil; return }
            let item = DispatchWorkItem { result = self.make(b, order) }
            pending = item
            queue.async(execute: item)
        }
        schedule(next)
        return AnyIterator {
            guard let item = pending else { return nil }
            item.wait()
            let batch = result!
            next += 1
            schedule(next)
            return batch
        }
    }
}

/// Evaluation batches in dataset order (no shuffling, no augmentation); with test-time augmentation
/// each image contributes `tta.views` consecutive rows.
public func evaluationRanges(_ data: FaceDataset, batchSize: Int) -> [Range<Int>] {
    stride(from: 0, to: data.count, by: batchSize).map { $0 ..< min($0 + batchSize, data.count) }
}

public func evaluationBatch(_ data: FaceDataset, _ range: Range<Int>, size: Int, tta: TestTimeAugmentation = .none) -> Batch {
    let px = size * size, views = tta.views
    var images = [Float](repeating: 0, count: range.count * views * px)
    data.images.withUnsafeBufferPointer { src in
        images.withUnsafeMutableBufferPointer { dst in
            for (j, i) in range.enumerated() {
                for v in 0..<views {
                    Augmentation.evalView(src.baseAddress! + i * data.pixelsPerImage, side: data.side,
                                          into: dst.baseAddress! + (j * views + v) * px, size: size, view: v)
                }
            }
        }
    }
    return Batch(images: images, labels: Array(data.labels[range]), targets: nil, size: size)
}
