import Foundation
import FERIO

/// The FER2013 challenge CSV: header `emotion,pixels,Usage`, then one face per line:
/// a label 0-6, 2,304 space-separated gray values 0-255 (48x48, row-major), and the split name.
/// Read plain or gzip-compressed; rows are parsed on all cores.
public enum FER2013 {
    public static let side = 48
    public static let header = "emotion,pixels,Usage"

    /// All three splits of the file at `path`.
    public static func load(_ path: String) throws -> [Split: FaceDataset] {
        let bytes = try FileBytes.read(path)
        return try parse(bytes, name: path)
    }

    static func parse(_ bytes: [UInt8], name: String) throws -> [Split: FaceDataset] {
        let pixels = side * side
        return try bytes.withUnsafeBufferPointer { buf -> [Split: FaceDataset] in
            let base = buf.baseAddress!, n = buf.count
            // Header.
            var headerEnd = 0
            while headerEnd < n, base[headerEnd] != 10 { headerEnd += 1 }
            let headerText = String(decoding: UnsafeBufferPointer(start: base, count: headerEnd), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard headerText == header else {
                if n == 0 { throw DataError.unreadable(name, reason: "the file is empty") }
                throw DataError.badHeader(name, found: String(headerText.prefix(60)), expected: header)
            }
            // Line starts (memchr is fast enough for 300 MB).
            var starts: [Int] = []
            starts.reserveCapacity(36_000)
            var p = headerEnd + 1
            while p < n {
                starts.append(p)
                guard let nl = memchr(base + p, 10, n - p) else { p = n; break }
                p = base.distance(to: nl.assumingMemoryBound(to: UInt8.self)) + 1
            }
            // Drop blank trailing lines.
            while let last = starts.last, lineEnd(base, n, last) - last <= (base[last] == 13 ? 1 : 0) { starts.removeLast() }
            let rows = starts.count
            var images = [UInt8](repeating: 0, count: rows * pixels)
            var labels = [Int](repeating: 0, count: rows)
            var usage = [Split](repeating: .training, count: rows)
            let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
            let errors = ErrorSlots(chunks)
            images.withUnsafeMutableBufferPointer { img in
                labels.withUnsafeMutableBufferPointer { lab in
                    usage.withUnsafeMutableBufferPointer { use in
                        let img = SharedPointer(img), lab = SharedPointer(lab), use = SharedPointer(use)
                        let text = SharedPointer(reading: base, count: n), starts = starts
                        DispatchQueue.concurrentPerform(iterations: chunks) { c in
                            let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
                            for r in lo..<hi {
                                let s = starts[r], e = lineEnd(text.base, n, s)
                                if let problem = parseRow(text.base + s, e - s, pixels: img.base + r * pixels, label: &lab.base[r], usage: &use.base[r]) {
                                    errors.set(c, DataError.badRow(name, line: r + 2, reason: problem))
                                    return
                                }
                            }
                        }
                    }
                }
            }
            if let e = errors.first { throw e }
            if rows > 0, bytes.last != 10 {
                // A final line without newline is fine if it parsed; a cut-off one failed above.
            }
            var result: [Split: FaceDataset] = [:]
            for split in Split.allCases {
                let idx = (0..<rows).filter { usage[$0] == split }
                var imgs = [UInt8]()
                imgs.reserveCapacity(idx.count * pixels)
                for i in idx { imgs.append(contentsOf: images[i * pixels ..< (i + 1) * pixels]) }
                var set = FaceDataset(side: side, images: imgs, labels: idx.map { labels[$0] }, sources: idx.map { "row \($0)" })
                set.rowNumbers = idx
                result[split] = set
            }
            return result
        }
    }

    @inline(__always)
    private static func lineEnd(_ base: UnsafePointer<UInt8>, _ n: Int, _ start: Int) -> Int {
        if let nl = memchr(base + start, 10, n - start) { return base.distance(to: nl.assumingMemoryBound(to: UInt8.self)) }
        return n
    }

    /// Parses one line; returns a description of the problem, or nil.
    private static func parseRow(_ p: UnsafePointer<UInt8>, _ len: Int, pixels out: UnsafeMutablePointer<UInt8>,
                                 label: inout Int, usage: inout Split) -> String? {
        var len = len
        if len > 0, p[len - 1] == 13 { len -= 1 }  // CRLF
        var i = 0
        // Label.
        var value = 0, digits = 0
        // Saturating: a 20-digit label is reported as out of range, not an overflow.
        while i < len, p[i] >= 48, p[i] <= 57 { value = min(value * 10 + Int(p[i] - 48), 1_000_000); i += 1; digits += 1 }
        guard digits > 0, i < len, p[i] == 44 else { return "the emotion label is not a number followed by a comma" }
        guard value <= 6 else { return "emotion label \(value < 1_000_000 ? "\(value)" : "of \(digits) digits") is outside 0-6" }
        label = value
        i += 1
        // Pixels.
        var count = 0
        while true {
            while i < len, p[i] == 32 { i += 1 }
            if i >= len || p[i] == 44 { break }
            var v = 0, d = 0
            while i < len, p[i] >= 48, p[i] <= 57 { v = min(v * 10 + Int(p[i] - 48), 1_000_000); i += 1; d += 1 }
            guard d > 0 else { return "pixel \(count + 1) is not a number ('\(Character(UnicodeScalar(p[i])))')" }
            guard v <= 255 else { return "pixel \(count + 1) has value \(v < 1_000_000 ? "\(v)" : "of \(d) digits"), outside 0-255" }
            guard count < side * side else { return "more than \(side * side) pixels" }
            out[count] = UInt8(v)
            count += 1
        }
        guard count == side * side else { return "\(count) pixels, expected \(side * side) (48x48)" }
        guard i < len, p[i] == 44 else { return "the Usage column is missing" }
        i += 1
        let rest = String(decoding: UnsafeBufferPointer(start: p + i, count: len - i), as: UTF8.self)
        guard let split = Split(rawValue: rest) else { return "unknown Usage '\(rest.prefix(40))' (expected Training, PublicTest or PrivateTest)" }
        usage = split
        return nil
    }
}

/// The first error per worker; the earliest line wins.
private final class ErrorSlots: @unchecked Sendable {  // writes hold `lock`; read after the workers end
    private var slots: [DataError?]
    private let lock = NSLock()
    init(_ n: Int) { slots = .init(repeating: nil, count: n) }
    func set(_ i: Int, _ e: DataError) { lock.lock(); slots[i] = e; lock.unlock() }
    var first: DataError? { slots.compactMap { $0 }.first }
}
