import Foundation
import FEREngine

/// Follows faces across video frames: each detection joins the track whose last box overlaps it
/// most (IoU >= 0.3), and a track's probabilities are smoothed with an exponential moving average,
/// so labels do not flicker from frame to frame. A face lost for a few frames (at most `maxMissed`)
/// that comes back near where it was (centre within one box width, a similar size) keeps its
/// number, though it moved while unseen (`merged` counts those); tracks unseen longer end.
public final class FaceTracker {
    struct Track { var id: Int; var box: FaceBox; var probabilities: [Float]; var missed: Int }

    /// Weight of the newest frame in the moving average (1: no smoothing).
    public var alpha: Float
    public var maxMissed: Int
    private var tracks: [Track] = []
    private var nextID = 1
    /// Times a track lost for a frame or more came back under its number.
    public private(set) var merged = 0

    public init(alpha: Float = 0.4, maxMissed: Int = 10) {
        self.alpha = alpha
        self.maxMissed = maxMissed
    }

    /// Assigns track ids and smoothed probabilities to this frame's faces (order kept).
    public func update(_ faces: [FaceResult], classNames: [String]) -> [FaceResult] {
        var used = Set<Int>()
        var out = faces
        // Greedy matching, best overlaps first.
        var pairs: [(Double, Int, Int)] = []
        for (fi, f) in faces.enumerated() {
            for (ti, t) in tracks.enumerated() {
                let o = f.box.iou(t.box)
                if o >= 0.3 { pairs.append((o, fi, ti)) }
            }
        }
        var matchedFace = [Int: Int]()
        for (_, fi, ti) in pairs.sorted(by: { $0.0 > $1.0 }) where matchedFace[fi] == nil && !used.contains(ti) {
            matchedFace[fi] = ti
            used.insert(ti)
        }
        // Faces left over, against tracks lost for a few frames: the nearest one close enough.
        var returns: [(Double, Int, Int)] = []
        for (fi, f) in faces.enumerated() where matchedFace[fi] == nil {
            for (ti, t) in tracks.enumerated() where t.missed > 0 && !used.contains(ti) {
                let d = hypot(f.box.centerX - t.box.centerX, f.box.centerY - t.box.centerY), size = Double(f.box.width) / Double(max(1, t.box.width))
                if d <= Double(t.box.width), size > 0.6, size < 1.6 { returns.append((d, fi, ti)) }
            }
        }
        for (_, fi, ti) in returns.sorted(by: { $0.0 < $1.0 }) where matchedFace[fi] == nil && !used.contains(ti) {
            matchedFace[fi] = ti
            used.insert(ti)
        }
        merged += matchedFace.values.filter { tracks[$0].missed > 0 }.count  // came back, by overlap or nearness
        for (fi, f) in faces.enumerated() {
            if let ti = matchedFace[fi] {
                var t = tracks[ti]
                t.probabilities = zip(t.probabilities, f.probabilities).map { (1 - alpha) * $0 + alpha * $1 }
                t.box = f.box
                t.missed = 0
                tracks[ti] = t
                out[fi].probabilities = t.probabilities
                out[fi].track = t.id
            } else {
                tracks.append(Track(id: nextID, box: f.box, probabilities: f.probabilities, missed: 0))
                used.insert(tracks.count - 1)
                out[fi].track = nextID
                nextID += 1
            }
            let top = argmax(out[fi].probabilities)
            out[fi].emotion = classNames[top]
            out[fi].confidence = out[fi].probabilities[top]
        }
        for i in tracks.indices where !used.contains(i) { tracks[i].missed += 1 }
        tracks.removeAll { $0.missed > maxMissed }
        return out
    }
}
