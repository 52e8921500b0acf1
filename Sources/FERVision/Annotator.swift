import Foundation
import FERIO
import FERModels

/// Boxes, labels and probability bars drawn on a BGR copy of an image.
public enum Annotator {
    static let palette: [Image.Color] = [(40, 40, 220), (40, 150, 40), (160, 60, 160), (30, 200, 250), (200, 120, 30), (0, 140, 255), (170, 170, 170)]

    public static func annotate(_ image: Image, _ faces: [FaceResult], classNames: [String], fps: Double? = nil) -> Image {
        var img = image.bgr
        let scale = max(0.45, Double(max(img.width, img.height)) / 1400)
        let thick = max(1, Int(scale * 2))
        for f in faces {
            let top = classNames.firstIndex(of: f.emotion) ?? 0
            let color = palette[top % palette.count]
            img.rectangle(f.box.x, f.box.y, f.box.width, f.box.height, color, thickness: thick)
            let label = "\(f.track.map { "#\($0) " } ?? "")\(f.emotion) \(Int((f.confidence * 100).rounded()))%"
            let size = Image.textSize(label, scale: scale, thickness: thick)
            let ty = max(size.height + 6, f.box.y - 4)
            img.rectangle(f.box.x, ty - size.height - 6, size.width + 8, size.height + 10, color, thickness: -1)
            img.text(label, f.box.x + 4, ty, scale: scale, (255, 255, 255), thickness: thick)
            // Probability bars under the box.
            let barW = max(40, f.box.width), rowH = max(10, Int(14 * scale))
            var y = f.box.y + f.box.height + 4
            for (i, p) in f.probabilities.enumerated() where y + rowH < img.height {
                let name = String(classNames[i].prefix(3))
                img.rectangle(f.box.x, y, barW, rowH - 2, (235, 235, 235), thickness: -1)
                img.rectangle(f.box.x, y, max(1, Int(Double(barW) * Double(p))), rowH - 2, palette[i % palette.count], thickness: -1)
                img.text(name, f.box.x + 2, y + rowH - 4, scale: scale * 0.6, (0, 0, 0), thickness: 1)
                y += rowH
            }
        }
        if let fps {
            img.text(String(format: "%.1f FPS", fps), 10, Int(30 * scale), scale: scale, (0, 255, 0), thickness: thick)
        }
        return img
    }

    /// A face as the network saw it (gray, `explanation.side` square) with its Grad-CAM heat laid
    /// over it (blue cold to red hot, the face showing through where the heat is low), `scale` times
    /// larger, and the class and its probability written under it.
    public static func explanation(_ explanation: Explanation, face: [UInt8], className: String, scale: Int = 4) -> Image {
        let side = explanation.side, out = side * scale, strip = 28
        let gray = Image(width: side, height: side, channels: 1, pixels: face).resized(width: out, height: out)
        let heat = Image(width: side, height: side, channels: 1, pixels: explanation.heat.map { UInt8((min(max($0, 0), 1) * 255).rounded()) })
            .resized(width: out, height: out)
        var img = Image(width: out, height: out + strip, channels: 3, pixels: [UInt8](repeating: 255, count: out * (out + strip) * 3))
        for i in 0..<(out * out) {
            let t = Double(heat.pixels[i]) / 255, g = Double(gray.pixels[i]), w = 0.6 * t
            // A "jet" colour: blue at 0, green at 0.5, red at 1.
            let r = min(max(1.5 - abs(4 * t - 3), 0), 1), gr = min(max(1.5 - abs(4 * t - 2), 0), 1), b = min(max(1.5 - abs(4 * t - 1), 0), 1)
            img.pixels[3 * i] = UInt8(((1 - w) * g + w * 255 * b).rounded())
            img.pixels[3 * i + 1] = UInt8(((1 - w) * g + w * 255 * gr).rounded())
            img.pixels[3 * i + 2] = UInt8(((1 - w) * g + w * 255 * r).rounded())
        }
        img.text("\(className) \(Int((explanation.probability * 100).rounded()))%", 6, out + strip - 9, scale: 0.55, (0, 0, 0), thickness: 1)
        return img
    }
}

extension Image {
    /// Images side by side, left to right, on white (each keeps its size; the row is the tallest's height).
    public static func row(_ images: [Image]) -> Image {
        let parts = images.map(\.bgr)
        let width = parts.reduce(0) { $0 + $1.width }, height = parts.map(\.height).max() ?? 1
        var out = Image(width: max(width, 1), height: height, channels: 3, pixels: [UInt8](repeating: 255, count: max(width, 1) * height * 3))
        var x0 = 0
        for p in parts {
            for y in 0..<p.height {
                out.pixels.replaceSubrange(((y * out.width) + x0) * 3 ..< ((y * out.width) + x0 + p.width) * 3, with: p.pixels[y * p.width * 3 ..< (y + 1) * p.width * 3])
            }
            x0 += p.width
        }
        return out
    }

    /// Several frames in a grid (the first one's size per tile, others resized to it), left to
    /// right and top to bottom: the live window with several sources.
    public static func tiled(_ frames: [Image]) -> Image {
        guard let first = frames.first?.bgr else { return Image(width: 640, height: 480, channels: 3) }
        guard frames.count > 1 else { return first }
        let cols = Int(Double(frames.count).squareRoot().rounded(.up)), rows = (frames.count + cols - 1) / cols
        let w = first.width, h = first.height
        var out = Image(width: w * cols, height: h * rows, channels: 3)
        for (k, f) in frames.enumerated() {
            let tile = f.bgr.resized(width: w, height: h), x0 = (k % cols) * w, y0 = (k / cols) * h
            for y in 0..<h {
                out.pixels.replaceSubrange(((y0 + y) * out.width + x0) * 3 ..< ((y0 + y) * out.width + x0 + w) * 3,
                                           with: tile.pixels[y * w * 3 ..< (y + 1) * w * 3])
            }
        }
        return out
    }
}
