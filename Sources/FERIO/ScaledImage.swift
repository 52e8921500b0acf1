import Foundation

/// A photo decoded for analysis at a fraction of its size, and the way back to its own pixels.
///
/// A 1350x1350 JPEG decodes in ~12 ms whole and ~4 ms at half size (libjpeg scales in the DCT), and
/// a face detector searches a copy of at most 640 pixels anyway. So a JPEG is decoded at the
/// smallest scale (1/2, 1/4, 1/8) whose longer side still covers `minSide`; other formats whole.
public struct ScaledImage: Sendable {
    public var image: Image
    /// The size of the encoded image as shown (after its EXIF turn, if any).
    public var originalWidth, originalHeight: Int

    public init(image: Image, originalWidth: Int, originalHeight: Int) {
        self.image = image
        self.originalWidth = originalWidth
        self.originalHeight = originalHeight
    }

    /// Pixels of `image` per pixel of the original (1, or about 1/2, 1/4, 1/8).
    public var scale: Double { Double(image.width) / Double(max(originalWidth, 1)) }

    /// The reduction (1, 2, 4 or 8) for an image with this header: the largest that keeps the longer
    /// side at least `minSide` (0: always 1). Only JPEG decodes faster reduced.
    public static func reduction(for header: ImageHeader?, minSide: Int) -> Int {
        guard let h = header, h.format == "JPEG", minSide > 0 else { return 1 }
        var k = 1
        while k < 8 && max(h.width, h.height) / (2 * k) >= minSide { k *= 2 }
        return k
    }

    /// Decodes `bytes` as colour (`channels` 3) or gray (1), reduced as `reduction(for:minSide:)`.
    /// An image of more than `maxPixels` (read from its header, before any decoding) is an error.
    public static func decode(_ bytes: [UInt8], channels: Int, minSide: Int, maxPixels: Int = ImageHeader.defaultMaxPixels,
                              name: String = "image data") throws -> ScaledImage {
        let header = ImageHeader.read(bytes)
        // Sides first: a lying header's product could overflow.
        if let h = header, h.width < 0 || h.height < 0 || h.width > 1 << 20 || h.height > 1 << 20 || h.pixels > maxPixels {
            throw DataError.mismatch(name, reason: "the image is \(h.width)x\(h.height) pixels, more than the limit of \(maxPixels) (--max-pixels)")
        }
        let k = reduction(for: header, minSide: minSide)
        let image = try Image.decode(bytes, channels: channels, reduction: k, name: name)
        // The decoder turns a JPEG by its EXIF orientation, so the original is the picture as shown;
        // but sizes and boxes must be those of the pixels the decoder gave, so where the header and
        // the decoder read the orientation differently (a tag stored in an unusual form), the size
        // that matches the decoded pixels wins.
        guard let h = header else { return ScaledImage(image: image, originalWidth: image.width, originalHeight: image.height) }
        func matches(_ w: Int, _ ht: Int) -> Bool { abs(image.width - (w + k - 1) / k) <= 1 && abs(image.height - (ht + k - 1) / k) <= 1 }
        let (w, ht) = matches(h.shownWidth, h.shownHeight) ? (h.shownWidth, h.shownHeight)
            : matches(h.width, h.height) ? (h.width, h.height) : matches(h.height, h.width) ? (h.height, h.width)
            : (image.width * k, image.height * k)
        return ScaledImage(image: image, originalWidth: w, originalHeight: ht)
    }

    /// Reads the file at `path` as `decode` does.
    public static func read(_ path: String, channels: Int, minSide: Int, maxPixels: Int = ImageHeader.defaultMaxPixels) throws -> ScaledImage {
        try DataError.checkReadable(path)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DataError.unreadable(path, reason: error.localizedDescription)
        }
        return try decode([UInt8](data), channels: channels, minSide: minSide, maxPixels: maxPixels, name: path)
    }
}
