import Foundation

/// Which oneDNN implementations ran while recording (`jit:avx2`, `brgconv:avx512_core`, `ref:any`...),
/// by primitive: what benchmarks print beside each stage, since the same code runs other kernels
/// on another CPU and a figure means little without them.
public enum KernelLog {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var seen: Set<String>?  // behind `lock`; nil while not recording

    /// `body`'s result and the primitives it executed, as "what: implementation", sorted.
    /// One recording at a time (benchmarks record stage by stage).
    public static func recording<T>(_ body: () throws -> T) rethrows -> (result: T, kernels: [String]) {
        lock.withLock { seen = [] }
        defer { lock.withLock { seen = nil } }
        let r = try body()
        return (r, lock.withLock { (seen ?? []).sorted() })
    }

    /// Called by every primitive execution: a lock and a nil check unless recording (tens of
    /// nanoseconds beside a primitive's microseconds).
    static func note(_ primitive: Primitive) {
        lock.withLock {
            guard seen != nil else { return }
            seen!.insert("\(primitive.what): \(primitive.implementation)")
        }
    }
}
