/// A buffer handed to the iterations of `DispatchQueue.concurrentPerform`, each of which reads it or
/// writes its own disjoint part (rows, slots): the one pattern the engine's parallel loops use.
/// Swift cannot see that the parts are disjoint, so the claim is made here, once.
public struct SharedPointer<T>: @unchecked Sendable {  // safe: iterations touch disjoint elements, or only read
    public let base: UnsafeMutablePointer<T>
    public let count: Int

    public init(_ buffer: UnsafeMutableBufferPointer<T>) {
        base = buffer.baseAddress!
        count = buffer.count
    }

    public init(reading pointer: UnsafePointer<T>, count n: Int) {
        base = UnsafeMutablePointer(mutating: pointer)
        count = n
    }

    public subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}
