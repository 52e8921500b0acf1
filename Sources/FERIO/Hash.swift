import Foundation

/// A 64-bit FNV-1a hash: for checking that ranks hold the same configuration and data, and for
/// keying cached work by a file's bytes.
public func fnv1a(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> Int64 {
    var h = seed
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return Int64(bitPattern: h)
}

/// FNV-1a over raw bytes (a file's contents), without the generic sequence's per-byte overhead.
public func contentHash(_ data: Data, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
    data.withUnsafeBytes { raw in
        var h = seed
        for b in raw { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }
}
