import CVBridge
import Foundation
import FEREngine
import FERIO
import FERData
import FERModels
import FEREvaluation

/// A face's box in image pixels.
public struct FaceBox: Codable, Sendable, Equatable {
    public var x, y, width, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }

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
        return FaceBox(x: x0, y: y0, width: max(1, x1 - x0), height: max(1, y1 - y0))
    }

    /// The box found on a copy shrunk by `scale`, in the original image's pixels.
    func unscaled(_ scale: Double) -> FaceBox {
        func u(_ v: Int) -> Int { Int((Double(v) / scale).rounded()) }
        return FaceBox(x: u(x), y: u(y), width: u(width), height: u(height))
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

/// Anything that finds faces: OpenCV's cascades or MTCNN.
public protocol FaceDetecting: AnyObject {
    /// Faces in an image (gray or BGR), left to right. `minFace` overrides the smallest face side and
    /// `maxFace` (when positive) bounds the largest, in pixels of `image`; `fullResolution` asks the
    /// detector not to work on a reduced copy.
    func detect(_ image: Image, minFace: Int?, maxFace: Int, fullResolution: Bool) -> [FaceBox]
    var name: String { get }
}

extension FaceDetecting {
    public func detect(_ image: Image) -> [FaceBox] { detect(image, minFace: nil, maxFace: 0, fullResolution: false) }
}

/// Builds the detector a command line names.
public enum FaceDetectors {
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case haar, haarAlt2 = "haar-alt2", lbp, mtcnn
    }

    /// `mtcnnWeights`: the converted MTCNN networks (models/mtcnn/mtcnn.safetensors).
    public static func make(_ kind: Kind, cascade: FaceDetector.Settings = .init(), mtcnnWeights: String) throws -> FaceDetecting {
        switch kind {
        case .haar: return try FaceDetector(.haar, settings: cascade)
        case .haarAlt2: return try FaceDetector(.haarAlt2, settings: cascade)
        case .lbp: return try FaceDetector(.lbp, settings: cascade)
        case .mtcnn:
            var s = MTCNNDetector.Settings()
            s.minFace = Double(max(cascade.minSize, 12))
            s.maxSide = cascade.maxSide
            return try MTCNNDetector(weights: mtcnnWeights, settings: s)
        }
    }
}

/// OpenCV's cascade face detectors from Debian's opencv-data, with their tuning.
public final class FaceDetector: FaceDetecting, @unchecked Sendable {
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case haar, haarAlt2 = "haar-alt2", lbp

        var file: String {
            switch self {
            case .haar: return "haarcascades/haarcascade_frontalface_default.xml"
            case .haarAlt2: return "haarcascades/haarcascade_frontalface_alt2.xml"
            case .lbp: return "lbpcascades/lbpcascade_frontalface_improved.xml"
            }
        }
    }

    public struct Settings: Codable, Sendable, Equatable {
        /// Image pyramid step: smaller finds more faces, slower.
        public var scaleFactor = 1.1
        /// Overlapping detections required: larger rejects more false faces.
        public var minNeighbors = 5
        /// Smallest face side in pixels of the image as given.
        public var minSize = 30
        /// Detect on a copy whose longer side is at most this (0: full size); boxes are scaled back.
        public var maxSide = 640
        public init() {}
    }

    public static let searchPaths = ["/usr/share/opencv4", "/usr/share/opencv", "/usr/local/share/opencv4"]

    public let kind: Kind
    public var settings: Settings
    private let cascade: OpaquePointer
    private let lock = NSLock()

    public init(_ kind: Kind = .haar, settings: Settings = Settings()) throws {
        let candidates = Self.searchPaths.map { ($0 as NSString).appendingPathComponent(kind.file) }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DataError.missingFile("\(kind.file) (install Debian's opencv-data; looked in \(Self.searchPaths.joined(separator: ", ")))")
        }
        guard let c = cvb_cascade_load(path) else { throw DataError.unreadable(path, reason: String(cString: cvb_last_error())) }
        self.kind = kind
        self.settings = settings
        self.cascade = c
    }

    deinit { cvb_cascade_free(cascade) }

    public var name: String { kind.rawValue }

    public func detect(_ image: Image, minFace: Int?, maxFace: Int, fullResolution: Bool) -> [FaceBox] {
        let (small, scale) = image.gray.forDetection(maxSide: settings.maxSide, fullResolution: fullResolution)
        let minSize = max(12, Int(Double(minFace ?? settings.minSize) * scale))
        var boxes = [cvb_rect](repeating: cvb_rect(), count: 256)
        lock.lock()
        let n = small.pixels.withUnsafeBufferPointer { px in
            cvb_cascade_detect(cascade, px.baseAddress, Int32(small.width), Int32(small.height), settings.scaleFactor,
                               Int32(settings.minNeighbors), Int32(minSize), Int32(Double(maxFace) * scale), &boxes, Int32(boxes.count))
        }
        lock.unlock()
        guard n > 0 else { return [] }
        return boxes.prefix(Int(min(n, 256))).map {
            FaceBox(x: Int($0.x), y: Int($0.y), width: Int($0.width), height: Int($0.height)).unscaled(scale)
        }.sorted { $0.centerX < $1.centerX }
    }
}
