import Foundation

/// The safetensors format (as read by PyTorch's `safetensors` package): an 8-byte little-endian
/// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
/// then the raw little-endian tensor bytes. Values are held as Float; files are written as F32 or,
/// to halve a shipped model, F16, and F32, F16 and BF16 files are read.
public struct SafeTensors {
    public var tensors: [(name: String, shape: [Int], values: [Float])] = []
    public var metadata: [String: String] = [:]
    /// The storage of a file read whose tensors all share one (nil if mixed or not read from a file).
    public var storedAs: DType?

    public enum DType: String, Sendable { case f32 = "F32", f16 = "F16", bf16 = "BF16"
        var size: Int { self == .f32 ? 4 : 2 }
    }

    public init() {}

    public subscript(name: String) -> (shape: [Int], values: [Float])? {
        tensors.first { $0.name == name }.map { ($0.shape, $0.values) }
    }

    public mutating func add(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        tensors.append((name, shape, values))
    }

    public func encoded(as dtype: DType = .f32) throws -> Data {
        precondition(dtype != .bf16, "BF16 is read, not written")
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * dtype.size
            header[t.name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors {
            if dtype == .f32 {
                t.values.withUnsafeBytes { out.append(contentsOf: $0) }
            } else {
                t.values.map { Float16($0).bitPattern.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    public func write(_ path: String, as dtype: DType = .f32) throws { try AtomicFile.write(try encoded(as: dtype), to: path) }

    public static func read(_ path: String) throws -> SafeTensors {
        try DataError.checkReadable(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path, reason: "I/O error") }
        return try decode(data, name: path)
    }

    /// The tensor names in the file at `path`, from its header alone (the data is not read).
    public static func names(_ path: String) throws -> Set<String> {
        try DataError.checkReadable(path)
        guard let file = FileHandle(forReadingAtPath: path) else { throw DataError.unreadable(path, reason: "I/O error") }
        defer { try? file.close() }
        let size = try file.seekToEnd()
        try file.seek(toOffset: 0)
        guard let prefix = try file.read(upToCount: 8), prefix.count == 8 else { throw DataError.unreadable(path, reason: "not a safetensors file") }
        let claimed = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard claimed > 0, claimed <= size - 8, let header = try file.read(upToCount: Int(claimed)),
              let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw DataError.unreadable(path, reason: "safetensors header is not a JSON object")
        }
        return Set(json.keys).subtracting(["__metadata__"])
    }

    public static func decode(_ data: Data, name: String) throws -> SafeTensors {
        guard data.count >= 8 else { throw DataError.unreadable(name, reason: "\(data.count) bytes: not a safetensors file") }
        let claimed = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard claimed > 0, claimed <= UInt64(data.count - 8) else {
            throw DataError.truncated(name, reason: "header claims \(claimed) bytes, file has \(data.count)")
        }
        let n = Int(claimed)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + n)) as? [String: Any] else {
            throw DataError.unreadable(name, reason: "safetensors header is not a JSON object")
        }
        let body = 8 + n
        var st = SafeTensors()
        st.metadata = header["__metadata__"] as? [String: String] ?? [:]
        var entries: [(String, [Int], Int, Int, DType)] = []
        for (key, value) in header where key != "__metadata__" {
            guard let v = value as? [String: Any], let dtype = v["dtype"] as? String, let shape = v["shape"] as? [Int],
                  let off = v["data_offsets"] as? [Int], off.count == 2 else {
                throw DataError.unreadable(name, reason: "tensor '\(key)' has a malformed entry")
            }
            guard let type = DType(rawValue: dtype) else {
                throw DataError.unreadable(name, reason: "tensor '\(key)' is \(dtype); F32, F16 and BF16 are supported")
            }
            // Overflow-checked: a hostile header may claim shapes or offsets near Int.max.
            var elements: Int? = 1
            for d in shape {
                guard let e = elements, d >= 0 else { elements = nil; break }
                let (m, o) = e.multipliedReportingOverflow(by: d)
                elements = o ? nil : m
            }
            guard let count = elements, count <= data.count, off[0] >= 0, off[1] >= off[0], off[1] <= data.count - body,
                  off[1] - off[0] == count * type.size else {
                throw DataError.unreadable(name, reason: "tensor '\(key)' with shape \(shape) does not match its bytes (offsets \(off), \(data.count - body) bytes of data)")
            }
            entries.append((key, shape, off[0], off[1], type))
        }
        for (key, shape, a, b, type) in entries.sorted(by: { $0.2 < $1.2 }) {
            let raw = data.subdata(in: body + a ..< body + b)
            let values: [Float] = raw.withUnsafeBytes { buf in
                switch type {
                case .f32: return (0..<buf.count / 4).map { Float(bitPattern: UInt32(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
                case .f16: return (0..<buf.count / 2).map { Float(Float16(bitPattern: UInt16(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))) }
                case .bf16: return (0..<buf.count / 2).map { Float(bitPattern: UInt32(UInt16(littleEndian: buf.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) << 16) }
                }
            }
            st.tensors.append((key, shape, values))
        }
        let types = Set(entries.map { $0.4 })
        st.storedAs = types.count == 1 ? types.first : nil
        return st
    }
}
