import FERIO
import FERModels
import Foundation

/// Video: faces are searched in the whole frame every `fullScanInterval` frames (and whenever no
/// face is being followed); in between, each followed face is re-checked where it was by the
/// detector's cheap tracking step (MTCNN: O-Net alone), and searched for again, at full resolution
/// around where it was, only if that fails. That keeps detection, the costly stage, small.
/// Probabilities are smoothed per track by a `FaceTracker`.
public final class VideoFaceAnalyzer {
    public let analyzer: FaceAnalyzer
    public let tracker: FaceTracker
    public var fullScanInterval: Int
    private var frame = 0
    private var last: [FaceBox] = []

    public init(_ analyzer: FaceAnalyzer, tracker: FaceTracker = FaceTracker(), fullScanInterval: Int = 10) {
        self.analyzer = analyzer
        self.tracker = tracker
        self.fullScanInterval = max(1, fullScanInterval)
    }

    /// The frame's faces and their expressions, smoothed per track.
    public func process(_ image: Image, times: inout StageTimes) -> [FaceResult] {
        let found = boxes(image, times: &times)
        return tracker.update(analyzer.classify(image, found, times: &times), classNames: analyzer.classifier.classNames)
    }

    /// The faces to classify in this frame: searched for, or followed from the last frame. Live
    /// sources classify the faces of several feeds in one batch, then call `results`.
    public func boxes(_ image: Image, times: inout StageTimes) -> [FaceBox] {
        let t = DispatchTime.now()
        var boxes: [FaceBox]
        if frame % fullScanInterval == 0 || last.isEmpty {
            boxes = analyzer.detector.detect(image)
        } else {
            boxes = []
            let tracked = analyzer.detector.track(image, previous: last)
            for (b, t) in zip(last, tracked) {
                if let t {
                    if !boxes.contains(where: { $0.iou(t) > 0.3 }) { boxes.append(t) }
                    continue
                }
                let roi = b.expanded(by: 0.5, within: image.width, image.height)
                let found = analyzer.detector.detect(image.cropped(roi), minFace: max(24, b.width * 2 / 3),
                                                         maxFace: b.width * 3 / 2, fullResolution: true)
                for f in found {
                    let g = FaceBox(x: f.x + roi.x, y: f.y + roi.y, width: f.width, height: f.height, roll: f.roll)
                    if !boxes.contains(where: { $0.iou(g) > 0.3 }) { boxes.append(g) }
                }
            }
            boxes.sort { $0.centerX < $1.centerX }
        }
        times.detect += milliseconds(since: t)
        frame += 1
        last = boxes
        return boxes
    }

    /// This frame's results from the classifier's probabilities for `boxes`, smoothed per track.
    public func results(_ boxes: [FaceBox], probabilities: [[Float]]) -> [FaceResult] {
        let names = analyzer.classifier.classNames
        return tracker.update(zip(boxes, probabilities).map { FaceResult(box: $0, probabilities: $1, classNames: names) }, classNames: names)
    }
}
