import Foundation
import FERIO
import FERData

/// Where a FER2013 face frame sits relative to a detector's box, measured rather than guessed:
/// the square frame's left and top edges and its side, in units of the box's width and height.
/// `fer calibrate crop` measures it by pasting upscaled FER2013 Training faces into larger images,
/// detecting them and taking the median of (frame - box) / box over the faces found. Reproducing
/// this frame from a detected box hands the network faces framed as it saw them in training.
public struct CropFraming: Codable, Sendable, Equatable {
    /// Frame left edge minus box left edge, in box widths.
    public var left: Double
    /// Frame top edge minus box top edge, in box heights.
    public var top: Double
    /// Frame side in box widths (for the box's height: side x width / height).
    public var side: Double

    public init(left: Double, top: Double, side: Double) {
        self.left = left; self.top = top; self.side = side
    }

    /// The frame for a detected box: (x, y, side) in image pixels; it may extend past the image.
    public func frame(_ box: FaceBox) -> (x: Double, y: Double, side: Double) {
        let w = Double(box.width), h = Double(box.height)
        // Side from the box's mean scale, so a slightly oblong box still gives a square frame.
        let s = side * (w + h) / 2
        let cx = Double(box.x) + (left + side / 2) * w, cy = Double(box.y) + (top + side / 2) * h
        return (cx - s / 2, cy - s / 2, s)
    }

    /// The frame of `box` when it was measured on a face of known frame (x, y, side): the inverse of `frame`.
    public static func measured(box: FaceBox, frameX: Double, frameY: Double, frameSide: Double) -> CropFraming {
        let w = Double(box.width), h = Double(box.height)
        return CropFraming(left: (frameX - Double(box.x)) / w, top: (frameY - Double(box.y)) / h, side: 2 * frameSide / (w + h))
    }

    /// The median framing over many measurements, one median per field.
    public static func median(_ samples: [CropFraming]) -> CropFraming? {
        guard !samples.isEmpty else { return nil }
        func med(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
        // Left and top are medians of the frame centre, so that they stay consistent with the median side.
        let side = med(samples.map(\.side))
        let cx = med(samples.map { $0.left + $0.side / 2 }), cy = med(samples.map { $0.top + $0.side / 2 })
        return CropFraming(left: cx - side / 2, top: cy - side / 2, side: side)
    }

    /// Measured with `fer calibrate crop --detector mtcnn` on 2,000 FER2013 Training faces (1,808 found).
    public static let mtcnn = CropFraming(left: -0.101, top: 0.016, side: 1.079)
    /// Measured with `fer calibrate crop --detector haar` on 2,000 FER2013 Training faces (1,198 found; used by
    /// all three cascades: their boxes sit alike).
    public static let cascade = CropFraming(left: -0.016, top: -0.012, side: 1.027)

}

extension Image {
    /// A square region (x, y, side in pixels, possibly past the edges: the border pixels are
    /// repeated there) as a gray out x out face, resized with area averaging.
    public func grayFrame(x: Double, y: Double, side: Double, out: Int) -> [UInt8] {
        let n = max(1, Int(side.rounded())), ch = channels
        let x0 = Int(x.rounded()), y0 = Int(y.rounded())
        var crop = [UInt8](repeating: 0, count: n * n * ch)
        pixels.withUnsafeBufferPointer { src in
            crop.withUnsafeMutableBufferPointer { dst in
                for r in 0..<n {
                    let row = min(max(y0 + r, 0), height - 1) * width
                    for c in 0..<n {
                        let s = (row + min(max(x0 + c, 0), width - 1)) * ch, d = (r * n + c) * ch
                        for k in 0..<ch { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        // Only the crop is converted to gray, never the whole frame.
        return Image(width: n, height: n, channels: ch, pixels: crop).gray.resized(width: out, height: out).pixels
    }
}
