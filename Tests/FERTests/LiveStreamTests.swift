import Foundation
import Testing
@testable import FERIO
@testable import FERVision

/// `fer live` on real streams served on loopback: HTTP MJPEG by ffmpeg, RTSP by GStreamer's RTSP
/// server (tools/rtsp_test_server.py), a file beside them, a stream killed and restarted mid-run.
/// scripts/test installs ffmpeg and the GStreamer packages.
@Suite("Live streams", .serialized) struct LiveStreamTests {
    static let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
    static let ffmpeg = "/usr/bin/ffmpeg"

    static func freePort() -> Int { Int.random(in: 20_000..<40_000) }

    /// ffmpeg serving the sample photo as a 10 FPS 640x480 MJPEG stream to one client.
    static func serveMJPEG(_ port: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ffmpeg)
        p.arguments = ["-loglevel", "error", "-re", "-loop", "1", "-framerate", "10", "-i", photo, "-vf", "scale=640:480", "-q:v", "5",
                       "-f", "mpjpeg", "-listen", "1", "http://127.0.0.1:\(port)/cam.mjpg"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Standard output as it arrives, readable while the process runs.
    final class Collected: @unchecked Sendable {  // every access holds its lock
        private var data = Data()
        private let lock = NSLock()
        func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }

        /// Waits (at most `seconds`) until the output holds `needle`.
        func wait(for needle: String, seconds: Double) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end { if text.contains(needle) { return true }; Thread.sleep(forTimeInterval: 0.05) }
            return false
        }
    }

    /// `fer live ... --headless`, killed after `limit` seconds; its JSON lines. `during` runs while
    /// it does, with its output so far.
    static func live(_ args: [String], limit: Double = 90, started: (Int32) -> Void = { _ in }, during: (Collected) throws -> Void = { _ in }) throws
        -> (status: Int32, lines: [[String: Any]], stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.ferBinary)
        p.arguments = ["live", "--headless", "--threads", "1"] + args
        let out = Pipe(), err = Pipe(), collected = Collected()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        started(p.processIdentifier)
        let drained = DispatchSemaphore(value: 0)
        let reader = out.fileHandleForReading
        DispatchQueue.global().async {
            while case let d = reader.availableData, !d.isEmpty { collected.append(d) }
            drained.signal()
        }
        let deadline = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: deadline)
        try during(collected)
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        deadline.cancel()
        drained.wait()
        let lines = collected.text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (p.terminationStatus, lines, String(decoding: e, as: UTF8.self))
    }

    static func emotions(_ lines: [[String: Any]], source: String) -> [String] {
        lines.filter { $0["source"] as? String == source }.flatMap { ($0["faces"] as? [[String: Any]] ?? []).compactMap { $0["emotion"] as? String } }
    }

    @Test func sourcesAreCheckedBeforeAnyWork() throws {
        #expect(try LiveSource.parse("2") == .camera(2))
        #expect(try LiveSource.parse("rtsp://10.0.0.5:554/stream") == .stream("rtsp://10.0.0.5:554/stream"))
        #expect(throws: LiveError.self) { _ = try LiveSource.parse("ftp://host/cam") }
        #expect(throws: LiveError.self) { _ = try LiveSource.parse("http://") }
        #expect(throws: LiveError.self) { _ = try LiveSource.parse("rtsp://host:70000/x") }
        #expect(throws: DataError.self) { _ = try LiveSource.parse("/nonexistent/clip.mp4") }
        for (source, says) in [("ftp://host/cam", "unsupported scheme ftp://"), ("http://", "not a URL with a host"), ("/nonexistent/clip.mp4", "no such file")] {
            let r = try run(Paths.ferBinary, ["live", "--headless", "--source", source])
            #expect(r.status == 1 && r.stderr.contains(says) && r.stdout.isEmpty, "\(source): \(r.stderr)")
        }
    }

    /// An HTTP MJPEG stream: the face is Happy; the server is killed and started again mid-run, and
    /// the feed reports the error, reconnects and goes on.
    @Test func mjpegStreamSurvivesARestart() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.ffmpeg), "ffmpeg is missing: scripts/test installs it")
        let port = Self.freePort(), url = "http://127.0.0.1:\(port)/cam.mjpg"
        var server = try Self.serveMJPEG(port)
        defer { server.terminate() }
        Thread.sleep(forTimeInterval: 0.5)
        let r = try Self.live(["--source", url, "--max-frames", "40"], during: { output in
            #expect(output.wait(for: "\"faces\"", seconds: 60), "no frame answered")
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            Thread.sleep(forTimeInterval: 1)
            server = try Self.serveMJPEG(port)
        })
        #expect(r.status == 0, "\(r.stderr)")
        let faces = Self.emotions(r.lines, source: url)
        #expect(faces.count >= 35 && faces.filter { $0 == "Happy" }.count >= faces.count * 9 / 10, "\(faces)")
        let events = r.lines.compactMap { $0["event"] as? String }
        #expect(events.contains("error") && events.contains("reconnected"), "\(events)")
        let summary = (r.lines.last?["summary"] as? [[String: Any]])?.first
        #expect(summary?["reconnects"] as? Int ?? 0 >= 1 && summary?["framesProcessed"] as? Int == 40, "\(String(describing: summary))")
        // Every answered frame says how late it is.
        #expect(r.lines.filter { $0["faces"] != nil }.allSatisfy { ($0["latencyMs"] as? Double ?? -1) >= 0 })
    }

    /// Ctrl-C: the summary, and exit code 0.
    @Test func ctrlCEndsWithASummary() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.ffmpeg), "ffmpeg is missing: scripts/test installs it")
        let port = Self.freePort(), url = "http://127.0.0.1:\(port)/cam.mjpg"
        let server = try Self.serveMJPEG(port)
        defer { kill(server.processIdentifier, SIGKILL) }
        Thread.sleep(forTimeInterval: 0.5)
        var pid: Int32 = 0
        let r = try Self.live(["--source", url], limit: 60, started: { pid = $0 }, during: { output in
            #expect(output.wait(for: "\"faces\"", seconds: 60), "no frame answered")
            kill(pid, SIGINT)
        })
        #expect(r.status == 0, "\(r.stderr)")
        let summary = (r.lines.last?["summary"] as? [[String: Any]])?.first
        #expect((summary?["framesProcessed"] as? Int ?? 0) >= 1 && r.stderr.contains("frames processed"), "\(r.stderr)")
    }

    /// Two sources at once: an RTSP stream and a file, both labelled; the file ends cleanly.
    @Test func rtspAndAFileAtOnce() throws {
        let script = (Paths.packageRoot as NSString).appendingPathComponent("tools/rtsp_test_server.py")
        let port = Self.freePort(), url = "rtsp://127.0.0.1:\(port)/cam"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [script, Self.photo, "\(port)"]
        let ready = Pipe()
        server.standardOutput = ready
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate() }
        let first = ready.fileHandleForReading.availableData  // the URL, once it listens
        try #require(String(decoding: first, as: UTF8.self).hasPrefix("rtsp://"), "the RTSP test server did not start (scripts/test installs gir1.2-gst-rtsp-server-1.0)")
        // A 4-second clip of the photo (MJPEG in AVI).
        let clip = Paths.temporaryDirectory("clip") + "/clip.avi"
        let make = try run(Self.ffmpeg, ["-loglevel", "error", "-loop", "1", "-framerate", "10", "-t", "4", "-i", Self.photo, "-vf", "scale=640:480", "-c:v", "mjpeg", clip])
        try #require(make.status == 0, "\(make.stderr)")
        let r = try Self.live(["--source", url, "--source", clip, "--max-frames", "8"])
        #expect(r.status == 0, "\(r.stderr)")
        let rtsp = Self.emotions(r.lines, source: url), file = Self.emotions(r.lines, source: clip)
        #expect(rtsp.count >= 7 && rtsp.filter { $0 == "Happy" }.count >= rtsp.count * 9 / 10, "rtsp: \(rtsp)")
        #expect(file.count >= 7 && file.filter { $0 == "Happy" }.count >= file.count * 9 / 10, "file: \(file)")
        let summary = r.lines.last?["summary"] as? [[String: Any]]
        #expect(summary?.count == 2)
    }
}

/// Issue 37: a password in a stream URL (`rtsp://user:pass@host/...`, the README's own form) is
/// never printed: not in names, events, summaries or errors.
@Suite("Stream credentials") struct StreamCredentialTests {
    @Test func passwordsAreShownAsStars() throws {
        #expect(LiveSource.redacted("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live")
        #expect(LiveSource.redacted("http://u:p@a@cam.local/x?y=1") == "http://u:***@cam.local/x?y=1")
        #expect(LiveSource.redacted("rtsp://user@host/x") == "rtsp://user@host/x")  // no password, nothing to hide
        #expect(LiveSource.redacted("opening 'rtsp://a:b@h/s' failed; rtsp://c:d@h2 too") == "opening 'rtsp://a:***@h/s' failed; rtsp://c:***@h2 too")
        #expect(LiveSource.redacted("/videos/clip.mp4") == "/videos/clip.mp4")
        #expect(try LiveSource.parse("rtsp://admin:s3cret@127.0.0.1:554/live").description == "rtsp://admin:***@127.0.0.1:554/live")
        #expect { _ = try LiveSource.parse("ftp://admin:s3cret@127.0.0.1/x") } throws: { !"\($0)".contains("s3cret") && "\($0)".contains("admin:***@") }
    }

    /// A stream that refuses: its error names the URL without the password.
    @Test func anOpenErrorHidesThePassword() throws {
        #expect { _ = try VideoReader(url: "http://admin:s3cret@127.0.0.1:9/cam.mjpg", openTimeout: 3, readTimeout: 1) } throws: {
            !"\($0)".contains("s3cret") && "\($0)".contains("admin:***@127.0.0.1:9")
        }
    }

    /// The whole command: `fer live --headless` on a refusing stream prints events, never the password.
    @Test func liveNeverPrintsThePassword() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.ferBinary)
        p.arguments = ["live", "--headless", "--source", "rtsp://admin:s3cret@127.0.0.1:9/live", "--stream-timeout", "1"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        Thread.sleep(forTimeInterval: 3)
        p.interrupt()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(text.contains("admin:***@127.0.0.1:9"), "\(text)")
        #expect(!text.contains("s3cret"), "\(text)")
    }
}

/// Issue 37: an MJPEG camera whose frames change size (a camera reconfigured, a stream switching
/// resolution). Each frame is read at its own size: OpenCV's decoder kept the first size and laid
/// the smaller frames into it, so half the frames showed two faces where there was one.
@Suite("Streams that change frame size", .serialized) struct FrameSizeChangeTests {
    @Test func eachFrameIsReadAtItsOwnSize() throws {
        let dir = Paths.temporaryDirectory("sizes")
        for (name, size) in [("big", "640:480"), ("small", "320:240")] {
            let ff = Process()
            ff.executableURL = URL(fileURLWithPath: LiveStreamTests.ffmpeg)
            ff.arguments = ["-y", "-loglevel", "error", "-i", LiveStreamTests.photo, "-vf", "scale=\(size)", "-q:v", "4", "\(dir)/\(name).jpg"]
            try ff.run()
            ff.waitUntilExit()
            #expect(ff.terminationStatus == 0)
        }
        let port = LiveStreamTests.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", (Paths.packageRoot as NSString).appendingPathComponent("tools/mjpeg_test_server.py"), String(port), "40",
                            dir + "/big.jpg", dir + "/small.jpg", "--repeat", "2", "--interval", "0.1"]
        try server.run()
        defer { server.terminate() }
        Thread.sleep(forTimeInterval: 1)
        let r = try LiveStreamTests.live(["--source", "http://127.0.0.1:\(port)/cam.mjpg", "--full-scan", "1", "--max-frames", "16"], limit: 60)
        let frames = r.lines.compactMap { $0["faces"] as? [[String: Any]] }
        #expect(frames.count >= 10, "\(r.stderr)")
        #expect(frames.allSatisfy { $0.count <= 1 }, "a frame showed more faces than there are: \(frames.map(\.count))")
        let widths = frames.compactMap { ($0.first?["box"] as? [String: Any])?["width"] as? Int }
        let (small, large) = (widths.min() ?? 0, widths.max() ?? 0)
        #expect(small > 0 && Double(small) < 0.7 * Double(large), "both frame sizes' faces, at their own scale: widths \(widths)")
    }
}
