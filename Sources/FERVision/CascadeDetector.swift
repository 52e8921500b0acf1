import CVBridge
import Foundation
import FERIO

/// OpenCV's cascade face detectors from Debian's opencv-data, with their tuning.
public final class CascadeDetector: FaceDetector {
    /// The cascade file of each kind, under opencv-data's folder.
    static func file(_ kind: DetectorKind) -> String? {
        switch kind {
        case .haar: return "haarcascades/haarcascade_frontalface_default.xml"
        case .haarAlt2: return "haarcascades/haarcascade_frontalface_alt2.xml"
        case .lbp: return "lbpcascades/lbpcascade_frontalface_improved.xml"
        case .mtcnn: return nil
        }
    }

    public static let searchPaths = ["/usr/share/opencv4", "/usr/share/opencv", "/usr/local/share/opencv4"]

    public let settings: DetectorSettings
    private let cascade: OpaquePointer
    private let lock = NSLock()

    public init(_ settings: DetectorSettings = DetectorSettings(kind: .haar)) throws {
        guard let file = Self.file(settings.kind) else { throw DataError.mismatch(settings.kind.rawValue, reason: "not a cascade detector") }
        let candidates = Self.searchPaths.map { ($0 as NSString).appendingPathComponent(file) }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw DataError.missingFile("\(file) (install Debian's opencv-data; looked in \(Self.searchPaths.joined(separator: ", ")))")
        }
        guard let c = cvb_cascade_load(path) else { throw DataError.unreadable(path, reason: String(cString: cvb_last_error())) }
        self.settings = settings
        self.cascade = c
    }

    deinit { cvb_cascade_free(cascade) }

    public func detect(_ image: Image, minFace: Int?, maxFace: Int, fullResolution: Bool) -> [FaceBox] {
        let (small, scale) = image.gray.forDetection(maxSide: settings.maxSide, fullResolution: fullResolution)
        let minSize = max(12, Int(Double(minFace ?? settings.minFace) * scale))
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
