import Foundation
import Synchronization

/// Which oneDNN implementations ran while recording (`jit:avx2`, `brgconv:avx512_core`, `ref:any`...),
/// by primitive: what benchmarks print beside each stage, since the same code runs other kernels
/// on another CPU and a figure means little without them.
public enum KernelLog {
    private static let active = Atomic<Bool>(false)
    private static let seen = Mutex<Set<String>>([])

    /// `body`'s result and the primitives it executed, as "what: implementation", sorted.
    /// One recording at a time (benchmarks record stage by stage).
    public static func recording<T>(_ body: () throws -> T) rethrows -> (result: T, kernels: [String]) {
        seen.withLock { $0.removeAll() }
        active.store(true, ordering: .releasing)
        defer { active.store(false, ordering: .releasing) }
        let r = try body()
        return (r, seen.withLock { $0.sorted() })
    }

    /// Called by every primitive execution: a load of one flag unless recording.
    static func note(_ primitive: Primitive) {
        guard active.load(ordering: .acquiring) else { return }
        let entry = "\(primitive.what): \(primitive.implementation)"
        _ = seen.withLock { $0.insert(entry) }
    }
}
