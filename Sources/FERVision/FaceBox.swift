import FERIO

/// A face's box in image pixels, and how far the face is tilted when the detector can tell.
public struct FaceBox: Codable, Sendable, Equatable {
    public var x, y, width, height: Int
    /// The angle of the line from the left eye to the right eye, degrees, clockwise on screen
    /// (positive: the face leans to its left shoulder as seen); from MTCNN's landmarks, nil from cascades.
    public var roll: Double?
    public init(x: Int, y: Int, width: Int, height: Int, roll: Double? = nil) {
        self.x = x; self.y = y; self.width = width; self.height = height; self.roll = roll
    }

    /// In JSON a box is its pixels only, as clients have always read it; the roll stays inside.
    enum CodingKeys: String, CodingKey { case x, y, width, height }

    public var centerX: Double { Double(x) + Double(width) / 2 }
    public var centerY: Double { Double(y) + Double(height) / 2 }

    /// Intersection over union with another box.
    public func iou(_ o: FaceBox) -> Double {
        let ix = max(0, min(x + width, o.x + o.width) - max(x, o.x))
        let iy = max(0, min(y + height, o.y + o.height) - max(y, o.y))
        let inter = Double(ix * iy)
        let union = Double(width * height + o.width * o.height) - inter
        return union > 0 ? inter / union : 0
    }

    /// The box grown by `margin` of its size on every side, clipped to the image.
    public func expanded(by margin: Double, within w: Int, _ h: Int) -> FaceBox {
        let dx = Int((Double(width) * margin).rounded()), dy = Int((Double(height) * margin).rounded())
        let x0 = max(0, x - dx), y0 = max(0, y - dy)
        let x1 = min(w, x + width + dx), y1 = min(h, y + height + dy)
        return FaceBox(x: x0, y: y0, width: max(1, x1 - x0), height: max(1, y1 - y0), roll: roll)
    }

    /// The box found on a copy shrunk by `scale`, in the original image's pixels.
    func unscaled(_ scale: Double) -> FaceBox {
        func u(_ v: Int) -> Int { Int((Double(v) / scale).rounded()) }
        return FaceBox(x: u(x), y: u(y), width: u(width), height: u(height), roll: roll)
    }
}

extension Image {
    /// What a detector searches: a copy whose longer side is at most `maxSide` (0 or
    /// `fullResolution`: the image itself), and the scale from the image to it.
    func forDetection(maxSide: Int, fullResolution: Bool) -> (image: Image, scale: Double) {
        let longest = max(width, height)
        guard !fullResolution, maxSide > 0, longest > maxSide else { return (self, 1) }
        let scale = Double(maxSide) / Double(longest)
        return (resized(width: max(1, Int(Double(width) * scale)), height: max(1, Int(Double(height) * scale))), scale)
    }
}
