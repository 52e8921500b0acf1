import Foundation

/// The safetensors format (as read by PyTorch's `safetensors` package): an 8-byte little-endian
/// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
/// then the raw little-endian tensor bytes. Only F32 is written here.
public struct SafeTensors {
    public var tensors: [(name: String, shape: [Int], values: [Float])] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public subscript(name: String) -> (shape: [Int], values: [Float])? {
        tensors.first { $0.name == name }.map { ($0.shape, $0.values) }
    }

    public mutating func add(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): \(values.count) values for shape \(shape)")
        tensors.append((name, shape, values))
    }

    public func encoded() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for t in tensors { t.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    public func write(_ path: String) throws { try AtomicFile.write(try encoded(), to: path) }

    public static func read(_ path: String) throws -> SafeTensors {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path, reason: "I/O error") }
        return try decode(data, name: path)
    }

    public static func decode(_ data: Data, name: String) throws -> SafeTensors {
        guard data.count >= 8 else { throw DataError.truncated(name, reason: "\(data.count) bytes, no safetensors header") }
        let n = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, n <= data.count - 8 else { throw DataError.truncated(name, reason: "header claims \(n) bytes, file has \(data.count)") }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + n)) as? [String: Any] else {
            throw DataError.unreadable(name, reason: "safetensors header is not a JSON object")
        }
        let body = 8 + n
        var st = SafeTensors()
        st.metadata = header["__metadata__"] as? [String: String] ?? [:]
        var entries: [(String, [Int], Int, Int)] = []
        for (key, value) in header where key != "__metadata__" {
            guard let v = value as? [String: Any], let dtype = v["dtype"] as? String, let shape = v["shape"] as? [Int],
                  let off = v["data_offsets"] as? [Int], off.count == 2 else {
                throw DataError.unreadable(name, reason: "tensor '\(key)' has a malformed entry")
            }
            guard dtype == "F32" else { throw DataError.unreadable(name, reason: "tensor '\(key)' is \(dtype); only F32 is supported") }
            guard off[0] >= 0, off[1] >= off[0], body + off[1] <= data.count, off[1] - off[0] == shape.reduce(1, *) * 4 else {
                throw DataError.truncated(name, reason: "tensor '\(key)' lies outside the file or does not match its shape")
            }
            entries.append((key, shape, off[0], off[1]))
        }
        for (key, shape, a, b) in entries.sorted(by: { $0.2 < $1.2 }) {
            let values = data.subdata(in: body + a ..< body + b).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            st.tensors.append((key, shape, values))
        }
        return st
    }
}
