import CZlib
import Foundation

/// Reads a file into memory, inflating it when it is gzip-compressed (by magic bytes, not name).
public enum FileBytes {
    public static func read(_ path: String) throws -> [UInt8] {
        try DataError.checkReadable(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path, reason: "permission or I/O error") }
        let bytes = [UInt8](data)
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B { return try gunzip(bytes, path: path) }
        return bytes
    }

    static func gunzip(_ input: [UInt8], path: String) throws -> [UInt8] {
        // The gzip trailer holds the uncompressed size mod 2^32: a good first guess for the buffer.
        var capacity = input.count * 4
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            if isize > 0 { capacity = isize }
        }
        var output = [UInt8](repeating: 0, count: capacity + 1)
        var stream = z_stream()
        guard fer_inflate_init_gzip(&stream) == Z_OK else { throw DataError.unreadable(path, reason: "zlib init failed") }
        defer { inflateEnd(&stream) }
        var produced = 0
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
            stream.avail_in = UInt32(inBuf.count)
            while true {
                if produced == output.count { output.append(contentsOf: [UInt8](repeating: 0, count: output.count)) }
                status = output.withUnsafeMutableBufferPointer { outBuf -> Int32 in
                    stream.next_out = outBuf.baseAddress! + produced
                    let room = min(outBuf.count - produced, Int(UInt32.max))
                    stream.avail_out = UInt32(room)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return s
                }
                if status == Z_STREAM_END {
                    // `cat a.gz b.gz` is a valid gzip file of two members: read them all, as gzip does.
                    let rest = Int(stream.avail_in), at = inBuf.count - rest
                    if rest >= 2, inBuf[at] == 0x1F, inBuf[at + 1] == 0x8B {
                        guard inflateReset(&stream) == Z_OK else { throw DataError.unreadable(path, reason: "zlib reset failed") }
                        continue
                    }
                    if rest > 0, inBuf[at...].contains(where: { $0 != 0 }) {
                        throw DataError.unreadable(path, reason: "\(rest) bytes after the gzip data at byte \(at) are not gzip data")
                    }
                    break
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw DataError.truncated(path, reason: "gzip stream ends after \(produced) bytes")
                }
                if status != Z_OK && status != Z_BUF_ERROR {
                    throw DataError.unreadable(path, reason: "corrupt gzip data (zlib \(status))")
                }
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}
