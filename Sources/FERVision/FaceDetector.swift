import Foundation
import FERIO
import FEREngine

/// The face detectors: MTCNN (three small networks on this engine) or OpenCV's cascades. What
/// differs between them is said here, as properties of the kind; code elsewhere asks these and
/// never tests for a kind by name, so a new detector is a new case and its answers below.
public enum DetectorKind: String, CaseIterable, Codable, Sendable {
    case mtcnn, haar, haarAlt2 = "haar-alt2", lbp

    /// Finds the eyes (MTCNN's five landmarks): `--align` and the levelled framing need them.
    public var findsLandmarks: Bool {
        switch self {
        case .mtcnn: return true
        case .haar, .haarAlt2, .lbp: return false
        }
    }

    /// Runs on this engine in a chosen arithmetic (`DetectorSettings.precision`, `--detector-precision`);
    /// the cascades run in OpenCV.
    public var hasPrecision: Bool { self == .mtcnn }

    /// Takes OpenCV's cascade options (`scaleFactor`, `minNeighbors`).
    public var takesCascadeOptions: Bool { !hasPrecision }

    /// Where the FER2013 face sits in this detector's box (`fer calibrate crop`).
    public var calibratedFraming: CropFraming {
        switch self {
        case .mtcnn: return .mtcnn
        case .haar, .haarAlt2, .lbp: return .cascade  // the three cascades' boxes sit alike
        }
    }

    /// The smallest face the detector sees, in pixels of the image it searches: P-Net's window, or
    /// the cascade's. A search for faces of F pixels or more needs the image at this / F of its size.
    public var searchWindow: Int {
        switch self {
        case .mtcnn: return 12
        case .haarAlt2: return 20
        case .haar, .lbp: return 24
        }
    }
}

/// Everything that configures a face detector, for every kind; the fields a kind does not take
/// (`DetectorKind.takesCascadeOptions`, `hasPrecision`) are ignored by it, and `fer` refuses them
/// when given (`DetectorOptions.validate`).
public struct DetectorSettings: Codable, Sendable, Equatable {
    public var kind: DetectorKind = .mtcnn
    /// Smallest face side in pixels of the image as given (the classifier's input is 48x48).
    public var minFace = 48
    /// Detect on a copy whose longer side is at most this (0: full size); boxes are scaled back.
    public var maxSide = 640
    /// Cascades: image pyramid step (> 1); smaller finds more faces, slower.
    public var scaleFactor = 1.1
    /// Cascades: overlapping detections required per face (>= 1); larger rejects more false faces.
    public var minNeighbors = 5
    /// MTCNN: the arithmetic its networks run in (int8 needs the ranges `fer calibrate int8 --mtcnn` stores).
    public var precision = Precision.fp32

    public init(kind: DetectorKind = .mtcnn) { self.kind = kind }

    /// What is wrong with these settings, if anything.
    public var problem: String? {
        if minFace < 12 { return "the smallest face must be at least 12 pixels, got \(minFace)" }
        if maxSide != 0 && maxSide < 64 { return "the detection side must be 0 (full size) or at least 64 pixels, got \(maxSide)" }
        if !(scaleFactor > 1 && scaleFactor <= 4) { return "the scale factor must be above 1 and at most 4, got \(scaleFactor)" }
        if minNeighbors < 1 || minNeighbors > 100 { return "min-neighbors must be between 1 and 100, got \(minNeighbors)" }
        return nil
    }
}

/// Anything that finds faces.
public protocol FaceDetector: AnyObject {
    /// Faces in an image (gray or BGR), left to right. `minFace` overrides the smallest face side and
    /// `maxFace` (when positive) bounds the largest, in pixels of `image`; `fullResolution` asks the
    /// detector not to work on a reduced copy.
    func detect(_ image: Image, minFace: Int?, maxFace: Int, fullResolution: Bool) -> [FaceBox]
    var settings: DetectorSettings { get }
    /// Video: where each face of the previous frame (`previous`) is in `image`, if a cheap check
    /// can tell; nil entries mean "search for it again".
    func track(_ image: Image, previous: [FaceBox]) -> [FaceBox?]
}

extension FaceDetector {
    public func track(_ image: Image, previous: [FaceBox]) -> [FaceBox?] { previous.map { _ in nil } }

    public func detect(_ image: Image) -> [FaceBox] { detect(image, minFace: nil, maxFace: 0, fullResolution: false) }
    public var name: String { settings.kind.rawValue }
    /// The name, with the arithmetic MTCNN runs in: "mtcnn int8", "haar".
    public var summary: String { settings.kind.hasPrecision ? "\(name) \(settings.precision.rawValue)" : name }
}

/// The detector `settings` describe. `mtcnnWeights`: the converted MTCNN networks
/// (models/mtcnn/mtcnn.safetensors).
public func makeFaceDetector(_ settings: DetectorSettings, mtcnnWeights: String) throws -> FaceDetector {
    if let p = settings.problem { throw DataError.mismatch("detector \(settings.kind.rawValue)", reason: p) }
    switch settings.kind {
    case .mtcnn: return try MTCNNDetector(weights: mtcnnWeights, settings: settings)
    case .haar, .haarAlt2, .lbp: return try CascadeDetector(settings)
    }
}
