import Foundation

/// A photo decoded for analysis at a fraction of its size, and the way back to its own pixels.
///
/// A 1350x1350 JPEG decodes in ~12 ms whole and ~4 ms at half size (libjpeg scales in the DCT), and
/// a face detector searches a copy of at most 640 pixels anyway, or less: one that looks for faces
/// of 48 pixels or more with a 12-pixel window needs a quarter of the photo's size. So a JPEG is
/// decoded at the smallest scale (1/2, 1/4, 1/8) whose longer side still covers `minSide`, or
/// `minScale` of the original where that is less (but never under half of `minSide`: small photos
/// gain nothing, and their faces would reach the detector's refinement in too few pixels); other
/// formats whole.
public struct ScaledImage: Sendable {
    public var image: Image
    /// The size of the encoded image as shown (after its EXIF turn, if any).
    public var originalWidth, originalHeight: Int
    /// The DCT reduction the image was decoded at (1, 2, 4 or 8), and the encoded bytes where it is
    /// above 1, so that a finer copy can be decoded (`decodedAgain`).
    public private(set) var reduction = 1
    private var encoded: [UInt8]?
    private var channels = 3

    public init(image: Image, originalWidth: Int, originalHeight: Int) {
        self.image = image
        self.originalWidth = originalWidth
        self.originalHeight = originalHeight
    }

    /// Pixels of `image` per pixel of the original (1, or about 1/2, 1/4, 1/8).
    public var scale: Double { Double(image.width) / Double(max(originalWidth, 1)) }

    /// The reduction (1, 2, 4 or 8) for an image with this header: the largest that keeps the longer
    /// side at least `minSide`, or at least `minScale` of itself where that is less, and never under
    /// `minSide / 2` (`minSide` 0: always 1).
    /// Only JPEG decodes faster reduced.
    public static func reduction(for header: ImageHeader?, minSide: Int, minScale: Double = 1) -> Int {
        guard let h = header, h.format == "JPEG" else { return 1 }
        return reduction(longerSide: max(h.width, h.height), minSide: minSide, minScale: minScale)
    }

    /// The same for a JPEG whose longer side is `longerSide` pixels.
    public static func reduction(longerSide longest: Int, minSide: Int, minScale: Double = 1) -> Int {
        guard minSide > 0 else { return 1 }
        let need = min(minSide, max(minSide / 2, Int(Double(longest) * max(minScale, 0))))
        var k = 1
        while k < 8 && longest / (2 * k) >= need { k *= 2 }
        return k
    }

    /// Decodes `bytes` as colour (`channels` 3) or gray (1), reduced as `reduction(for:minSide:minScale:)`.
    /// An image of more than `maxPixels` (read from its header, before any decoding) is an error.
    public static func decode(_ bytes: [UInt8], channels: Int, minSide: Int, minScale: Double = 1, maxPixels: Int = ImageHeader.defaultMaxPixels,
                              name: String = "image data") throws -> ScaledImage {
        let header = ImageHeader.read(bytes)
        // Sides first: a lying header's product could overflow.
        if let h = header, h.width < 0 || h.height < 0 || h.width > 1 << 20 || h.height > 1 << 20 || h.pixels > maxPixels {
            throw DataError.mismatch(name, reason: "the image is \(h.width)x\(h.height) pixels, more than the limit of \(maxPixels) (--max-pixels)")
        }
        let k = reduction(for: header, minSide: minSide, minScale: minScale)
        let image = try Image.decode(bytes, channels: channels, reduction: k, name: name)
        // The decoder turns a JPEG by its EXIF orientation, so the original is the picture as shown;
        // but sizes and boxes must be those of the pixels the decoder gave, so where the header and
        // the decoder read the orientation differently (a tag stored in an unusual form), the size
        // that matches the decoded pixels wins.
        var scaled = ScaledImage(image: image, originalWidth: image.width, originalHeight: image.height)
        scaled.reduction = k
        scaled.encoded = k > 1 ? bytes : nil
        scaled.channels = channels
        guard let h = header else { return scaled }
        func matches(_ w: Int, _ ht: Int) -> Bool { abs(image.width - (w + k - 1) / k) <= 1 && abs(image.height - (ht + k - 1) / k) <= 1 }
        let (w, ht) = matches(h.shownWidth, h.shownHeight) ? (h.shownWidth, h.shownHeight)
            : matches(h.width, h.height) ? (h.width, h.height) : matches(h.height, h.width) ? (h.height, h.width)
            : (image.width * k, image.height * k)
        scaled.originalWidth = w
        scaled.originalHeight = ht
        return scaled
    }

    /// The same photo decoded at the finer `reduction` (1 or 2 or 4, below this one's).
    public func decodedAgain(reduction k: Int) throws -> ScaledImage {
        guard let bytes = encoded, k < reduction else { return self }
        var finer = self
        finer.image = try Image.decode(bytes, channels: channels, reduction: k)
        finer.reduction = k
        finer.encoded = k > 1 ? bytes : nil
        return finer
    }

    /// The bytes of the file at `path`, or an error naming it.
    public static func bytes(of path: String) throws -> [UInt8] {
        try DataError.checkReadable(path)
        do { return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw DataError.unreadable(path, reason: error.localizedDescription)
        }
    }

    /// Reads the file at `path` as `decode` does.
    public static func read(_ path: String, channels: Int, minSide: Int, minScale: Double = 1, maxPixels: Int = ImageHeader.defaultMaxPixels) throws -> ScaledImage {
        try decode(try bytes(of: path), channels: channels, minSide: minSide, minScale: minScale, maxPixels: maxPixels, name: path)
    }
}
