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

    /// The EXIF Orientation of a JPEG (1-8; 1 when absent). Phones store photos as the sensor saw
    /// them and record the turn here; OpenCV's decoder applies it, so the picture comes out as shown.
    public var orientation: Int = 1

    public var pixels: Int { width * height }

    /// The size as shown, after the EXIF turn: orientations 5-8 swap width and height.
    public var shownWidth: Int { (5...8).contains(orientation) ? height : width }
    public var shownHeight: Int { (5...8).contains(orientation) ? width : height }

    /// The most pixels a command decodes unless told otherwise (`--max-pixels`): a 100 kB PNG can
    /// hold a 50,000 x 50,000 image, 2.5 GB of pixels.
    public static let defaultMaxPixels = 40_000_000

    /// Why a JPEG is cut short, or nil: its end-of-image marker (FF D9, which the compressed data
    /// can never contain) must stand in its last kilobyte. libjpeg decodes a cut JPEG without
    /// complaint, grey below the cut, so this is the only place the damage can be seen.
    public static func truncation(_ b: [UInt8]) -> String? {
        guard b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF else { return nil }
        let tail = max(2, b.count - 1024)
        for i in stride(from: b.count - 2, through: tail, by: -1) where b[i] == 0xFF && b[i + 1] == 0xD9 { return nil }
        return "the JPEG stops before its end-of-image marker (\(b.count) bytes): the file was cut short"
    }

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
            // Walk the marker segments to the first start-of-frame, which holds the size; an EXIF
            // segment on the way may carry the orientation.
            var i = 2, orientation = 1
            while i + 3 < b.count {
                guard b[i] == 0xFF else { return nil }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }  // fill byte
                if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }  // no length
                guard let length = be16(i + 2), length >= 2 else { return nil }
                let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
                if isFrame {
                    guard let h = be16(i + 5), let w = be16(i + 7) else { return nil }
                    var header = ImageHeader(format: "JPEG", width: w, height: h)
                    header.orientation = orientation
                    return header
                }
                if marker == 0xE1, let o = exifOrientation(b, from: i + 4, to: min(b.count, i + 2 + length)) { orientation = o }
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

    /// The Orientation tag (0x0112) of IFD0 in an APP1 segment's payload b[start..<end]
    /// ("Exif\0\0", then a TIFF header); nil if absent, malformed or out of range.
    static func exifOrientation(_ b: [UInt8], from start: Int, to end: Int) -> Int? {
        guard start >= 0, end <= b.count, end - start >= 14, Array(b[start..<start + 6]) == Array("Exif".utf8) + [0, 0] else { return nil }
        let t = start + 6  // offsets in the TIFF structure count from here
        let little: Bool
        switch (b[t], b[t + 1]) {
        case (0x49, 0x49): little = true   // "II"
        case (0x4D, 0x4D): little = false  // "MM"
        default: return nil
        }
        func u16(_ i: Int) -> Int? {
            guard i >= t, i + 1 < end else { return nil }
            return little ? Int(b[i]) | Int(b[i + 1]) << 8 : Int(b[i]) << 8 | Int(b[i + 1])
        }
        func u32(_ i: Int) -> Int? {
            guard let lo = u16(little ? i : i + 2), let hi = u16(little ? i + 2 : i) else { return nil }
            return hi << 16 | lo
        }
        guard u16(t + 2) == 42, let ifd = u32(t + 4), ifd < end - t, let count = u16(t + ifd) else { return nil }
        for k in 0..<min(count, 512) {
            let entry = t + ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                guard u16(entry + 2) == 3, let value = u16(entry + 8), (1...8).contains(value) else { return nil }  // SHORT
                return value
            }
        }
        return nil
    }
}
