import CVBridge
import Foundation
import FERIO

public enum VideoError: Error, CustomStringConvertible {
    case cannotOpen(String, String)
    case cannotWrite(String, String)
    case readFailed(String, String)

    public var description: String {
        switch self {
        case .cannotOpen(let what, let why): return "\(what): cannot open (\(why))"
        case .cannotWrite(let what, let why): return "\(what): cannot write (\(why))"
        case .readFailed(let what, let why): return "\(what): read failed (\(why))"
        }
    }
}

/// Frames from a video file or a camera, BGR.
public final class VideoReader {
    private let handle: OpaquePointer
    public let name: String
    public let width, height: Int
    /// Frames per second the source reports (30 when it reports none).
    public let fps: Double
    /// Frame count, nil when unknown (cameras).
    public let frameCount: Int?
    /// Frames of more pixels than this are skipped (`read` goes on to the next) and counted.
    public let maxPixels: Int
    public private(set) var oversizedFrames = 0

    /// Takes an open source and reads its size, rate and (files only) frame count. A source whose
    /// frames are over `maxPixels` is refused here, before any frame is decoded.
    private init(handle h: OpaquePointer, name: String, maxPixels: Int = ImageHeader.defaultMaxPixels) throws {
        handle = h
        self.name = name
        self.maxPixels = maxPixels
        var w: Int32 = 0, ht: Int32 = 0, f: Double = 0, n: Int32 = 0
        cvb_video_info(h, &w, &ht, &f, &n)
        width = Int(w); height = Int(ht); fps = f > 0 ? f : 30; frameCount = n >= 0 ? Int(n) : nil
        if width * height > maxPixels {
            throw VideoError.cannotOpen(name, "its frames are \(width)x\(height) pixels, more than the limit of \(maxPixels) (--max-pixels)")
        }
        cvb_video_limit(h, Int64(maxPixels))
    }

    public convenience init(path: String, maxPixels: Int = ImageHeader.defaultMaxPixels) throws {
        try DataError.checkReadable(path)
        if let kind = Self.fetchingKind(path) {
            throw VideoError.cannotOpen(path, "it is \(kind), which makes the decoder fetch what it names; give a stream URL to --source instead")
        }
        guard let h = cvb_video_open(path) else { throw VideoError.cannotOpen(path, String(cString: cvb_last_error())) }
        try self.init(handle: h, name: path, maxPixels: maxPixels)
    }

    /// What the file is when it is a list of other inputs (an HLS or M3U playlist, a PLS playlist,
    /// an SDP session, an FFmpeg concat script): FFmpeg would open what it names, URLs included,
    /// so a "file" would reach the network past the checks and deadlines streams get. nil for
    /// anything else. Read from the first bytes, whatever the file is called.
    static func fetchingKind(_ path: String) -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        let head = String(decoding: (try? h.read(upToCount: 64)) ?? Data(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\u{FEFF}"))).lowercased()
        if head.hasPrefix("#extm3u") || head.hasPrefix("#ext-x-") { return "an HLS/M3U playlist" }
        if head.hasPrefix("[playlist]") { return "a PLS playlist" }
        if head.hasPrefix("ffconcat") { return "an FFmpeg concat script" }
        if head.hasPrefix("v=0") { return "an SDP session description" }
        return nil
    }

    public convenience init(camera index: Int, width: Int = 640, height: Int = 480) throws {
        guard let h = cvb_camera_open(Int32(index), Int32(width), Int32(height)) else {
            throw VideoError.cannotOpen("camera \(index)", "no such camera or it is busy; list cameras with `ls /dev/video*`")
        }
        try self.init(handle: h, name: "camera \(index)")
    }

    /// A network stream (`rtsp://`, `http(s)://` MJPEG, anything FFmpeg opens): opening fails after
    /// `openTimeout` seconds without an answer, and a read after `readTimeout` seconds without a frame.
    public convenience init(url: String, openTimeout: Double = 10, readTimeout: Double = 5, maxPixels: Int = ImageHeader.defaultMaxPixels) throws {
        // Names and errors carry the URL without its password (OpenCV's own messages may quote it).
        guard let h = cvb_stream_open(url, Int32(openTimeout * 1000), Int32(readTimeout * 1000)) else {
            throw VideoError.cannotOpen(LiveSource.redacted(url), LiveSource.redacted(String(cString: cvb_last_error())))
        }
        try self.init(handle: h, name: LiveSource.redacted(url), maxPixels: maxPixels)
    }

    deinit { cvb_video_close(handle) }

    /// The next frame, at its own size (a stream's frames may change size), or nil at the end;
    /// frames over `maxPixels` are skipped (`oversizedFrames`), an MJPEG frame before it is decoded.
    public func read() throws -> Image? {
        while true {
            var img = cvb_image()
            let r = cvb_video_read(handle, &img)
            if r == 0 { return nil }
            guard r > 0 else { throw VideoError.readFailed(name, LiveSource.redacted(String(cString: cvb_last_error()))) }
            if r == 2 { oversizedFrames += 1; continue }
            defer { cvb_image_free(&img) }
            let n = Int(img.width) * Int(img.height) * Int(img.channels)
            return Image(width: Int(img.width), height: Int(img.height), channels: Int(img.channels), pixels: Array(UnsafeBufferPointer(start: img.data, count: n)))
        }
    }
}

/// Writes BGR frames to a video file (MPEG-4 Part 2 in .mp4 by default, MJPG for .avi). The file
/// is written under a temporary name and renamed when closed, so a crash leaves no half video.
public final class VideoWriter {
    private var handle: OpaquePointer?
    public let path: String
    private let temporary: String
    public let width, height: Int

    /// Why a video cannot be written at `path`, if it cannot (links followed): a folder, or what is
    /// not a regular file (a device, a FIFO: an MP4 is written by seeking, and is never put in
    /// their place). Commands ask before any work; `init` refuses the same.
    public static func problem(writingTo path: String) -> String? {
        if let kind = AtomicFile.specialKind(path) { return "is \(kind); an annotated video is written to a regular file" }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return "is a folder; give a file name (NAME.mp4)" }
        return nil
    }

    public init(path: String, fps: Double, width: Int, height: Int) throws {
        if let why = Self.problem(writingTo: path) { throw VideoError.cannotWrite(path, "it \(why)") }
        let path = AtomicFile.linkTarget(path)  // a link's target is replaced, the link kept
        let ext = (path as NSString).pathExtension.lowercased()
        let fourcc = ext == "avi" ? "MJPG" : "mp4v"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        temporary = (dir.isEmpty ? "" : dir + "/") + ".\((path as NSString).lastPathComponent).tmp-\(getpid()).\(ext.isEmpty ? "mp4" : ext)"
        guard let h = cvb_writer_open(temporary, fourcc, fps, Int32(width), Int32(height)) else {
            throw VideoError.cannotWrite(path, String(cString: cvb_last_error()))
        }
        handle = h
        self.path = path
        self.width = width
        self.height = height
    }

    /// Writes one frame; a frame of another size (the input changed size mid-stream) is scaled to
    /// the video's.
    public func write(_ frame: Image) throws {
        guard let h = handle else { throw VideoError.cannotWrite(path, "writer is closed") }
        var f = frame.bgr
        if f.width != width || f.height != height { f = f.resized(width: width, height: height) }
        let r = f.pixels.withUnsafeBufferPointer { cvb_writer_write(h, $0.baseAddress, Int32(width), Int32(height)) }
        guard r == 0 else { throw VideoError.cannotWrite(path, String(cString: cvb_last_error())) }
    }

    /// Finishes the file and moves it into place.
    public func close() throws {
        guard let h = handle else { return }
        cvb_writer_close(h)
        handle = nil
        guard rename(temporary, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            throw VideoError.cannotWrite(path, why)
        }
    }

    deinit {
        if let h = handle { cvb_writer_close(h); unlink(temporary) }
    }
}

/// A window on the display (OpenCV highgui).
public enum Display {
    /// Shows a frame; false when there is no display.
    public static func show(_ name: String, _ frame: Image) -> Bool {
        let f = frame.bgr
        return f.pixels.withUnsafeBufferPointer { cvb_window_show(name, $0.baseAddress, Int32(f.width), Int32(f.height)) } == 0
    }

    /// Key pressed within `ms` milliseconds, or nil.
    public static func key(waiting ms: Int) -> Int? {
        let k = cvb_wait_key(Int32(ms))
        return k >= 0 ? Int(k & 0xFF) : nil
    }

    public static func closeAll() { cvb_window_close_all() }
}
