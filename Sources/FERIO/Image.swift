import CVBridge
import Foundation

/// An 8-bit image, gray (1 channel) or BGR (3), row-major. Decoding, encoding and resizing go
/// through the OpenCV bridge.
public struct Image: Sendable {
    public var width, height, channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels, pixels: .init(repeating: fill, count: width * height * channels))
    }

    private static func take(_ img: inout cvb_image) -> Image {
        defer { cvb_image_free(&img) }
        let n = Int(img.width) * Int(img.height) * Int(img.channels)
        return Image(width: Int(img.width), height: Int(img.height), channels: Int(img.channels),
                     pixels: Array(UnsafeBufferPointer(start: img.data, count: n)))
    }

    private static var lastError: String { String(cString: cvb_last_error()) }

    /// Reads an image file as gray (`channels` 1) or colour (3), at 1/`reduction` of its size (1, 2,
    /// 4 or 8; a JPEG decodes at that scale directly, several times faster than whole).
    public static func read(_ path: String, channels: Int = 1, reduction: Int = 1) throws -> Image {
        try DataError.checkReadable(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path, reason: "permission or I/O error") }
        return try decode([UInt8](data), channels: channels, reduction: reduction, name: path)
    }

    /// Decodes an encoded image (PNG, JPEG, BMP...) held in memory, at 1/`reduction` of its size as
    /// `read`; `name` labels errors.
    public static func decode(_ bytes: [UInt8], channels: Int = 1, reduction: Int = 1, name: String = "image data") throws -> Image {
        if let cut = ImageHeader.truncation(bytes) { throw DataError.truncated(name, reason: cut) }
        var img = cvb_image()
        let status = bytes.withUnsafeBufferPointer { cvb_decode($0.baseAddress, $0.count, Int32(channels), Int32(reduction), &img) }
        guard status == 0 else { throw DataError.corruptImage(name, reason: lastError) }
        return take(&img)
    }

    /// Encodes to the format of `path`'s extension and writes atomically (temporary file, then rename).
    public func write(_ path: String) throws {
        let ext = "." + (path as NSString).pathExtension.lowercased()
        let data = try encoded(ext.count > 1 ? ext : ".png")
        try AtomicFile.write(Data(data), to: path)
    }

    /// The image after a JPEG encode and decode at `quality` (1-100).
    public func jpegRoundTrip(quality: Int) throws -> Image {
        var out = [UInt8](repeating: 0, count: pixels.count)
        let status = pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                cvb_jpeg_roundtrip(src.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(quality), dst.baseAddress)
            }
        }
        guard status == 0 else { throw DataError.unreadable("JPEG round trip", reason: Image.lastError) }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    public func encoded(_ ext: String) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var count = 0
        let status = pixels.withUnsafeBufferPointer {
            cvb_encode(ext, $0.baseAddress, Int32(width), Int32(height), Int32(channels), &out, &count)
        }
        guard status == 0, let out else { throw DataError.unreadable(ext, reason: Image.lastError) }
        defer { cvb_buffer_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: count))
    }

    public func resized(width w: Int, height h: Int) -> Image {
        if w == width && h == height { return self }
        var out = [UInt8](repeating: 0, count: w * h * channels)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = cvb_resize(src.baseAddress, Int32(width), Int32(height), Int32(channels), dst.baseAddress, Int32(w), Int32(h))
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// The square of `side` pixels centred at (centerX, centerY), turned by `degrees` (counter-
    /// clockwise on screen) about its centre, as an out x out gray image; past the edges the border
    /// repeats. Nil when the square lies wholly outside the image.
    public func grayFrame(centerX: Double, centerY: Double, side: Double, degrees: Double, out: Int) -> [UInt8]? {
        var dst = [UInt8](repeating: 0, count: out * out)
        let status = pixels.withUnsafeBufferPointer { src in
            dst.withUnsafeMutableBufferPointer { d in
                cvb_gray_frame_rotated(src.baseAddress, Int32(width), Int32(height), Int32(channels), centerX, centerY, side, degrees, d.baseAddress, Int32(out))
            }
        }
        return status == 0 ? dst : nil
    }

    /// The image turned by `degrees` (counter-clockwise on screen) about (centerX, centerY); same
    /// size, border repeated.
    public func rotated(degrees: Double, centerX: Double, centerY: Double) -> Image {
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = cvb_rotate(src.baseAddress, Int32(width), Int32(height), Int32(channels), centerX, centerY, degrees, dst.baseAddress)
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }

    /// The rectangle at (x, y) of size regionWidth x regionHeight, clipped to the image, resized to
    /// width x height (the rectangle is not copied out first).
    public func resized(x: Int, y: Int, regionWidth: Int, regionHeight: Int, width w: Int, height h: Int) -> Image {
        let x0 = max(0, min(x, width - 1)), y0 = max(0, min(y, height - 1))
        let rw = max(1, min(regionWidth, width - x0)), rh = max(1, min(regionHeight, height - y0))
        var out = [UInt8](repeating: 0, count: w * h * channels)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                _ = cvb_resize_region(src.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(x0), Int32(y0), Int32(rw), Int32(rh),
                                      dst.baseAddress, Int32(w), Int32(h))
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    public var gray: Image {
        if channels == 1 { return self }
        var out = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { _ = cvb_bgr_to_gray(src.baseAddress, Int32(width), Int32(height), $0.baseAddress) }
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    public var bgr: Image {
        if channels == 3 { return self }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<width * height { out[3 * i] = pixels[i]; out[3 * i + 1] = pixels[i]; out[3 * i + 2] = pixels[i] }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }

    /// The image inside a plain border of `pad` pixels on every side (`value` in every channel).
    public func bordered(_ pad: Int, value: UInt8 = 0) -> Image {
        guard pad > 0 else { return self }
        let w = width + 2 * pad, h = height + 2 * pad, rowBytes = width * channels
        var out = [UInt8](repeating: value, count: w * h * channels)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    (dst.baseAddress! + ((y + pad) * w + pad) * channels).update(from: src.baseAddress! + y * rowBytes, count: rowBytes)
                }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// A face crop ready for the network: gray, side x side (48 for FER2013).
    public func faceInput(side: Int = 48) -> [UInt8] { gray.resized(width: side, height: side).pixels }
}

/// Drawing on a BGR image, for plots and annotations (OpenCV's line, rectangle and text).
extension Image {
    public typealias Color = (b: UInt8, g: UInt8, r: UInt8)

    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: Color, thickness: Int = 1) {
        let (w, h) = (Int32(width), Int32(height))
        pixels.withUnsafeMutableBufferPointer {
            _ = cvb_draw_line($0.baseAddress, w, h, Int32(x0), Int32(y0), Int32(x1), Int32(y1), Int32(c.b), Int32(c.g), Int32(c.r), Int32(thickness))
        }
    }

    public mutating func rectangle(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: Color, thickness: Int = 1) {
        let (iw, ih) = (Int32(width), Int32(height))
        pixels.withUnsafeMutableBufferPointer {
            _ = cvb_draw_rect($0.baseAddress, iw, ih, Int32(x), Int32(y), Int32(w), Int32(h), Int32(c.b), Int32(c.g), Int32(c.r), Int32(thickness))
        }
    }

    public mutating func text(_ s: String, _ x: Int, _ y: Int, scale: Double = 0.5, _ c: Color = (0, 0, 0), thickness: Int = 1) {
        let (w, h) = (Int32(width), Int32(height))
        pixels.withUnsafeMutableBufferPointer {
            _ = cvb_draw_text($0.baseAddress, w, h, s, Int32(x), Int32(y), scale, Int32(c.b), Int32(c.g), Int32(c.r), Int32(thickness))
        }
    }

    public static func textSize(_ s: String, scale: Double = 0.5, thickness: Int = 1) -> (width: Int, height: Int) {
        var w: Int32 = 0, h: Int32 = 0
        _ = cvb_text_size(s, scale, Int32(thickness), &w, &h)
        return (Int(w), Int(h))
    }
}
