import Foundation
import Testing
@testable import FERIO
@testable import FERVision

/// `fer video --report`: the report of a generated video, checked as JSON and rendered in headless
/// Chromium (the name puts it with the browser tests, which scripts/test runs on their own).
@Suite("fer video --report in a real browser", .serialized) struct VideoReportBrowserTests {
    /// A 320x240 video: the sample portrait's head drifting for 30 frames, gone for 3 (the face is
    /// lost), back 50 pixels further on (too far for its last box, ~67 pixels wide, to overlap enough) for 30 more.
    static func makeVideo(_ path: String) throws {
        let photo = try Image.read((Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png"), channels: 3)
        let head = FaceBox(x: photo.width * 28 / 100, y: photo.height * 2 / 100, width: photo.width * 44 / 100, height: photo.width * 44 / 100)
        let portrait = photo.cropped(head).resized(width: 180, height: 180)
        let w = try VideoWriter(path: path, fps: 15, width: 320, height: 240)
        for i in 0..<63 {
            var frame = Image(width: 320, height: 240, channels: 3, fill: 90)
            if !(30..<33).contains(i) {
                let ox = (i < 30 ? 10 : 60) + i / 3
                for y in 0..<180 { for x in 0..<180 where ox + x < 320 { for c in 0..<3 { frame.pixels[((30 + y) * 320 + ox + x) * 3 + c] = portrait.pixels[(y * 180 + x) * 3 + c] } } }
            }
            try w.write(frame)
        }
        try w.close()
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: BrowserTests.chromedriver), "chromium-driver is not installed (scripts/test installs it)"))
    func reportRendersOneTimelinePerTrackAndSharesAddUp() async throws {
        let dir = Paths.temporaryDirectory("report")
        try Self.makeVideo(dir + "/clip.mp4")
        let r = try run(Paths.ferBinary, ["video", dir + "/clip.mp4", "--out", dir + "/clip.annotated.mp4", "--report", dir + "/clip.html",
                                          "--report-json", dir + "/clip.json", "--full-scan", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try JSONDecoder().decode(VideoReport.Summary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/clip.json")))
        #expect(summary.tracks.count == 1, "the face lost for 3 frames keeps its number: \(summary.tracks.map(\.id))")
        #expect(summary.mergedTracks >= 1)
        #expect(summary.video == "clip.annotated.mp4")
        for t in summary.tracks {
            #expect(abs(t.shares.values.reduce(0, +) - 1) < 1e-9)
            #expect(!t.timeline.isEmpty && t.thumbnail.hasPrefix("data:image/png;base64,"))
        }
        #expect(summary.facesOnScreen.map { Int($0[1]) }.contains(0), "the gap shows in faces on screen")
        let html = try String(contentsOfFile: dir + "/clip.html", encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script src"), "the page fetches nothing")

        let driver = try await WebDriver.start(args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,1300"],
                                               binary: BrowserTests.chromium, driver: BrowserTests.chromedriver)
        do {
            try await driver.navigate("file://" + dir + "/clip.html")
            let timelines = try await driver.execute("return String(document.querySelectorAll('svg.timeline').length)")
            #expect(timelines == String(summary.tracks.count))
            let sums = try await driver.execute("""
                return JSON.stringify([...document.querySelectorAll('section.track')].map(s =>
                  [...s.querySelectorAll('.share')].reduce((a, e) => a + parseFloat(e.dataset.share), 0)))
                """)
            let totals = try #require(try JSONSerialization.jsonObject(with: Data(sums.utf8)) as? [Double])
            #expect(totals.count == summary.tracks.count && totals.allSatisfy { abs($0 - 1) < 1e-4 }, "\(sums)")
            let drawn = try await driver.execute("return String(document.querySelector('svg.timeline polyline').getBBox().width)")
            #expect((Double(drawn) ?? 0) > 100, "the timeline is drawn: \(drawn)")
            let png = try await driver.screenshot()
            let shot = ProcessInfo.processInfo.environment["FER_REPORT_SCREENSHOT"] ?? dir + "/report.png"
            try Data(png).write(to: URL(fileURLWithPath: shot))
            #expect(try Image.decode(png, channels: 3).width > 800)
        } catch {
            await driver.quit()
            throw error
        }
        await driver.quit()
    }
}

/// The report's arithmetic on frames whose answer is known, and the tracker keeping a returning face's number.
@Suite("Video report and tracks") struct VideoReportSummaryTests {
    static let names = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]

    static func face(_ top: Int, track: Int, x: Int = 50) -> FaceResult {
        var p = [Float](repeating: 0.01, count: 7)
        p[top] = 0.94
        return FaceResult(box: FaceBox(x: x, y: 40, width: 60, height: 60), probabilities: p, classNames: names, track: track)
    }

    @Test func sharesDominantAndTheMomentOfChange() throws {
        let report = VideoReport(input: "clip.mp4", fps: 10, classNames: Self.names)
        let frame = Image(width: 200, height: 160, channels: 3, fill: 80)
        // Track 1: Happy for 3 s, then Sad for 1 s; track 2 appears at 2 s, Neutral throughout.
        for f in 0..<40 {
            var faces = [Self.face(f < 30 ? 3 : 4, track: 1)]
            if f >= 20 { faces.append(Self.face(6, track: 2, x: 120)) }
            report.add(frame: f, image: frame, faces: faces)
        }
        let s = report.summary(wallSeconds: 1, video: nil)
        #expect(s.frames == 40 && s.seconds == 4)
        let one = try #require(s.tracks.first { $0.id == 1 }), two = try #require(s.tracks.first { $0.id == 2 })
        #expect(one.dominant == "Happy" && abs(one.shares["Happy"]! - 0.75) < 1e-12 && abs(one.shares["Sad"]! - 0.25) < 1e-12)
        #expect(two.dominant == "Neutral" && two.shares["Neutral"] == 1 && two.firstSeconds == 2 && two.secondsOnScreen == 2)
        #expect(s.facesOnScreen == [[0, 1], [2, 2]])
        let m = try #require(s.moments.first)
        #expect(s.moments.count == 1 && m.track == 1 && m.from == "Happy" && m.to == "Sad" && abs(m.seconds - 3) <= 0.5, "\(s.moments)")
        let html = VideoReportPage.html(s)
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == 2)
    }

    @Test func aFaceLostForAFewFramesKeepsItsNumber() {
        let tracker = FaceTracker(alpha: 1, maxMissed: 10)
        func at(_ x: Int) -> [FaceResult] { [FaceResult(box: FaceBox(x: x, y: 40, width: 60, height: 60), probabilities: [Float](repeating: 1 / 7, count: 7), classNames: Self.names)] }
        #expect(tracker.update(at(50), classNames: Self.names).first?.track == 1)
        _ = tracker.update([], classNames: Self.names)
        _ = tracker.update([], classNames: Self.names)
        // Back 40 pixels on (IoU with where it was lost: 0.2, under the 0.3 that matches a face seen last frame).
        #expect(tracker.update(at(90), classNames: Self.names).first?.track == 1)
        #expect(tracker.merged == 1)
        // A face far away is someone else.
        _ = tracker.update([], classNames: Self.names)
        #expect(tracker.update(at(400), classNames: Self.names).first?.track == 2)
    }
}
