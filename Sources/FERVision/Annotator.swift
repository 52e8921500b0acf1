import Foundation
import FERIO

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
}

extension Image {
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
