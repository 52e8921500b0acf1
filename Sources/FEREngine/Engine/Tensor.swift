import CDNNL
import Foundation

/// A tensor in oneDNN memory, in whatever layout and element type its producer chose: float32
/// everywhere except inside bf16 convolutions and int8 inference networks (bf16, u8, s8).
///
/// `shape` is the logical shape (N, C, H, W for images; N, F for features). The physical layout may
/// be blocked (e.g. nChw16c, channels padded to a multiple of 16); `plainValues()` reorders to
/// row-major at the edges (loss, checkpoints, tests). Elementwise code that is layout-agnostic
/// (dropout, optimizers) may work on `storage` directly.
public final class Tensor: @unchecked Sendable {  // one owner at a time: the batch loader fills a tensor, hands it over and never touches it again
    let desc: MemoryDesc
    let memory: dnnl_memory_t
    /// Start of the data, `desc.byteCount` bytes.
    let raw: UnsafeMutableRawPointer

    public var shape: [Int] { desc.shape }
    public var count: Int { shape.reduce(1, *) }
    /// Number of floats in the physical buffer (padding included).
    var storageCount: Int { desc.byteCount / MemoryLayout<Float>.stride }

    /// A new tensor in layout `desc`, zero-filled unless `zeroed` is false (primitive outputs, which
    /// oneDNN writes in full, padding included).
    init(desc: MemoryDesc, zeroed: Bool = true) {
        self.desc = desc
        var d = desc
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, &d, DNNL.shared.engine, fer_dnnl_memory_allocate()), "memory create \(desc.shape)")
        memory = m!
        var handle: UnsafeMutableRawPointer?
        check(dnnl_memory_get_data_handle(memory, &handle), "data handle")
        raw = handle!
        owner = nil
        if zeroed { memset(raw, 0, desc.byteCount) }
    }

    /// Keeps the owner of borrowed storage alive (views made by `viewed(as:)`).
    private let owner: Tensor?

    /// A second descriptor over `base`'s bytes: the same plain data seen with another shape.
    private init(view desc: MemoryDesc, of base: Tensor) {
        precondition(desc.byteCount <= base.desc.byteCount, "view larger than its storage")
        self.desc = desc
        var d = desc
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, &d, DNNL.shared.engine, base.raw), "memory view \(desc.shape)")
        memory = m!
        raw = base.raw
        owner = base
    }

    deinit { dnnl_memory_destroy(memory) }

    /// A zero tensor in plain row-major layout.
    public convenience init(zeros shape: [Int]) {
        self.init(desc: .plain(shape))
    }

    /// A plain row-major tensor holding `values`.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(values.count) values for shape \(shape)")
        self.init(desc: .plain(shape))
        values.withUnsafeBufferPointer { _ = memcpy(raw, $0.baseAddress!, values.count * 4) }
    }

    /// A new f32 [N, C, H, W] tensor written in place by `fill` (zeros first), in row-major order or,
    /// with `channelsLast`, in the order (N, H, W, C) that int8 convolutions take without a transposition.
    public convenience init(images shape: [Int], channelsLast: Bool, fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(shape.count == 4, "an image batch is [N, C, H, W], not \(shape)")
        self.init(desc: channelsLast ? MemoryDesc(shape, dnnl_acdb) : .plain(shape))
        fill(UnsafeMutableBufferPointer(start: raw.assumingMemoryBound(to: Float.self), count: count))
    }

    /// The physical buffer, padding included.
    var storage: UnsafeMutableBufferPointer<Float> {
        precondition(desc.dataType == dnnl_f32, "elementwise Swift code reads f32 tensors only")
        return UnsafeMutableBufferPointer(start: raw.assumingMemoryBound(to: Float.self), count: storageCount)
    }

    var isPlain: Bool { desc.isPlain }

    /// The values in row-major order of `shape`, whatever the physical layout.
    public func plainValues() -> [Float] { values(laidOutAs: .plain(shape)) }

    /// The values of an [N, C, H, W] tensor in channels-last order (N, H, W, C). Int8 networks
    /// write that layout, so it comes without a reorder: for a map of few channels (MTCNN's
    /// P-Net: 6) the reorder to row-major, a transposition, costs more than the network's last layer.
    public func channelsLastValues() -> [Float] {
        precondition(shape.count == 4, "channels-last values of a \(shape) tensor")
        return values(laidOutAs: MemoryDesc(shape, dnnl_acdb))
    }

    /// The values as f32 in the dense layout `desc` (reordered only where this tensor lies otherwise).
    private func values(laidOutAs desc: MemoryDesc) -> [Float] {
        let t = laidOut(as: desc)
        return Array(UnsafeBufferPointer(start: t.raw.assumingMemoryBound(to: Float.self), count: count))
    }

    /// The same plain data seen with another shape of equal size, sharing storage (plain layouts only).
    func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(isPlain, "reshape needs a plain layout, not \(shape) blocked")
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) to \(newShape)")
        return Tensor(view: .plain(newShape), of: self)
    }
}
