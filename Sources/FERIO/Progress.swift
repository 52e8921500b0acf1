import Foundation

/// A one-line progress bar on standard error: redrawn in place on a terminal, printed every 10%
/// otherwise (logs under nohup stay readable).
public final class ProgressBar {
    public var total: Int
    let label: String
    let start = Date()
    let interactive: Bool
    var lastDecile = -1
    /// Items already done when the bar started (a resumed epoch): excluded from the ETA.
    let initial: Int
    public var enabled = true

    public init(total: Int, label: String, initial: Int = 0) {
        self.total = max(total, 1)
        self.label = label
        self.initial = initial
        interactive = isatty(2) != 0
    }

    public func update(_ done: Int, _ info: String = "") {
        guard enabled else { return }
        let frac = Double(min(done, total)) / Double(total)
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > initial ? elapsed / Double(done - initial) * Double(total - done) : .infinity
        let width = 24, filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = "\(label) \(bar) \(done)/\(total) \(info) [\(Self.clock(elapsed)) < \(Self.clock(eta))]"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            let decile = Int(frac * 10)
            if decile != lastDecile { lastDecile = decile; FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
    }

    public func finish(_ info: String = "") {
        guard enabled else { return }
        update(total, info)
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s)
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
    }
}
