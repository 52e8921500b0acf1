/// An encoded image's format and size, read from its first bytes without decoding it, so that an
/// upload can be refused for its pixel count before any memory is spent on its pixels (a 100 kB PNG
/// can hold a 50,000 x 50,000 image).
public struct ImageHeader: Equatable, Sendable {
    public var format: String
    public var width: Int
    public var height: Int

    public init(format: String, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }

    public var pixels: Int { width * height }

    /// The formats whose size can be read here and that OpenCV 4.6 decodes.
    public static let formats = ["JPEG", "PNG", "BMP", "WebP"]

    /// The header of a JPEG, PNG, BMP or WebP image; nil for anything else or a header cut short.
    public static func read(_ b: [UInt8]) -> ImageHeader? {
        func be16(_ i: Int) -> Int? { i + 1 < b.count ? Int(b[i]) << 8 | Int(b[i + 1]) : nil }
        func le16(_ i: Int) -> Int? { i + 1 < b.count ? Int(b[i + 1]) << 8 | Int(b[i]) : nil }
        func be32(_ i: Int) -> Int? { i + 3 < b.count ? Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) : nil }
        func le32(_ i: Int) -> Int? { i + 3 < b.count ? Int(Int32(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)) : nil }
        func le24(_ i: Int) -> Int? { i + 2 < b.count ? Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 : nil }
        func starts(_ s: [UInt8], at i: Int = 0) -> Bool { b.count >= i + s.count && Array(b[i..<i + s.count]) == s }

        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), starts(Array("IHDR".utf8), at: 12),
           let w = be32(16), let h = be32(20) {
            return ImageHeader(format: "PNG", width: w, height: h)
        }
        if starts([0xFF, 0xD8]) {
            // Walk the marker segments to the first start-of-frame, which holds the size.
            var i = 2
            while i + 3 < b.count {
                guard b[i] == 0xFF else { return nil }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }  // fill byte
                if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }  // no length
                guard let length = be16(i + 2), length >= 2 else { return nil }
                let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
                if isFrame {
                    guard let h = be16(i + 5), let w = be16(i + 7) else { return nil }
                    return ImageHeader(format: "JPEG", width: w, height: h)
                }
                i += 2 + length
            }
            return nil
        }
        if starts(Array("BM".utf8)), let w = le32(18), let h = le32(22) {
            return ImageHeader(format: "BMP", width: w, height: abs(h))  // negative height: rows top-down
        }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) {
            if starts(Array("VP8 ".utf8), at: 12), let w = le16(26), let h = le16(28) {
                return ImageHeader(format: "WebP", width: w & 0x3FFF, height: h & 0x3FFF)
            }
            if starts(Array("VP8L".utf8), at: 12), b.count > 24, b[20] == 0x2F {
                let bits = UInt32(b[21]) | UInt32(b[22]) << 8 | UInt32(b[23]) << 16 | UInt32(b[24]) << 24
                return ImageHeader(format: "WebP", width: Int(bits & 0x3FFF) + 1, height: Int((bits >> 14) & 0x3FFF) + 1)
            }
            if starts(Array("VP8X".utf8), at: 12), let w = le24(24), let h = le24(27) {
                return ImageHeader(format: "WebP", width: w + 1, height: h + 1)
            }
        }
        return nil
    }
}
