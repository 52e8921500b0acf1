import Foundation

/// A `VideoReport.Summary` as one self-contained HTML page: inline CSS and SVG, thumbnails as data
/// URIs, no script or file from elsewhere (a few lines of inline script seek the annotated video
/// beside it to a moment). Readable in any browser, and printable.
public enum VideoReportPage {
    /// One colour per expression, in `classNames` order (Angry ... Neutral).
    static let colours = ["#d62728", "#8c564b", "#9467bd", "#f2b01e", "#1f77b4", "#17becf", "#7f7f7f"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func clock(_ s: Double) -> String { String(format: "%d:%04.1f", Int(s) / 60, s.truncatingRemainder(dividingBy: 60)) }

    static func colour(_ k: Int) -> String { colours[k % colours.count] }

    /// The seven probabilities of one track over the video's time, as an SVG line chart.
    static func timeline(_ t: VideoReport.Track, classNames: [String], seconds: Double, width: Double = 760, height: Double = 150) -> String {
        let span = max(seconds, 1e-6)
        func x(_ s: Double) -> Double { 40 + (width - 50) * s / span }
        func y(_ p: Double) -> Double { 10 + (height - 30) * (1 - p) }
        var svg = "<svg class=\"timeline\" data-track=\"\(t.id)\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"expression probabilities of face #\(t.id) over time\">"
        for p in [0.0, 0.5, 1.0] {
            svg += String(format: "<line x1=\"40\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"34\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.1f</text>", width - 10, y(p), y(p), y(p) + 3, p)
        }
        for k in classNames.indices {
            let points = t.timeline.map { String(format: "%.1f,%.1f", x($0[0]), y($0[k + 1])) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour(k))\" stroke-width=\"1.5\" points=\"\(points)\"><title>\(escape(classNames[k]))</title></polyline>"
        }
        svg += String(format: "<text x=\"40\" y=\"%.0f\" font-size=\"10\">0:00</text><text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"end\">%@</text>",
                      height - 4, width - 10, height - 4, clock(seconds))
        return svg + "</svg>"
    }

    /// Faces on screen over the video, as an SVG step chart.
    static func facesChart(_ s: VideoReport.Summary, width: Double = 760, height: Double = 90) -> String {
        let most = max(1, s.facesOnScreen.map { Int($0[1]) }.max() ?? 1), span = max(s.seconds, 1e-6)
        func x(_ t: Double) -> Double { 40 + (width - 50) * t / span }
        func y(_ n: Double) -> Double { 8 + (height - 26) * (1 - n / Double(most)) }
        var points: [String] = []
        for (i, c) in s.facesOnScreen.enumerated() {
            if i > 0 { points.append(String(format: "%.1f,%.1f", x(c[0]), y(s.facesOnScreen[i - 1][1]))) }
            points.append(String(format: "%.1f,%.1f", x(c[0]), y(c[1])))
        }
        if let last = s.facesOnScreen.last { points.append(String(format: "%.1f,%.1f", x(s.seconds), y(last[1]))) }
        return "<svg class=\"faces\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"faces on screen over time\">"
            + String(format: "<text x=\"34\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%d</text><text x=\"34\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">0</text>", y(Double(most)) + 3, most, y(0) + 3)
            + "<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>"
            + String(format: "<text x=\"40\" y=\"%.0f\" font-size=\"10\">0:00</text><text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"end\">%@</text></svg>",
                     height - 4, width - 10, height - 4, clock(s.seconds))
    }

    public static func html(_ s: VideoReport.Summary) -> String {
        let title = escape((s.input as NSString).lastPathComponent)
        var body = "<h1>\(title)</h1>"
        body += "<p class=\"meta\">\(s.frames) frames, \(clock(s.seconds)) at \(String(format: "%.1f", s.fps)) fps; \(s.tracks.count) face\(s.tracks.count == 1 ? "" : "s") tracked"
            + (s.mergedTracks > 0 ? "; \(s.mergedTracks) time\(s.mergedTracks == 1 ? "" : "s") a face was lost for a moment and came back under its number" : "") + "</p>"
        if let v = s.video {
            body += "<video id=\"video\" src=\"\(escape(v))\" controls preload=\"metadata\" width=\"480\"></video>"
        }
        body += "<h2>Faces on screen</h2>" + facesChart(s)
        if !s.moments.isEmpty {
            body += "<h2>Moments of strongest change</h2><ol class=\"moments\">"
            for m in s.moments {
                let when = clock(m.seconds)
                let at = s.video == nil ? "<b>\(when)</b>" : "<a href=\"#video\" onclick=\"seek(\(String(format: "%.2f", m.seconds)));return false\">\(when)</a>"
                body += "<li>\(at): face #\(m.track), \(escape(m.from)) &rarr; \(escape(m.to))</li>"
            }
            body += "</ol>"
        }
        body += "<h2>Faces</h2><p class=\"legend\">" + s.classNames.enumerated().map { "<span><i style=\"background:\(colour($0.offset))\"></i>\(escape($0.element))</span>" }.joined() + "</p>"
        for t in s.tracks {
            let order = s.classNames.indices.sorted { (t.shares[s.classNames[$0]] ?? 0) > (t.shares[s.classNames[$1]] ?? 0) }
            body += "<section class=\"track\" data-track=\"\(t.id)\">"
            body += "<div class=\"head\">" + (t.thumbnail.isEmpty ? "" : "<img src=\"\(t.thumbnail)\" alt=\"face #\(t.id)\" width=\"72\" height=\"72\">")
            body += "<div><h3>Face #\(t.id): mostly \(escape(t.dominant))</h3><p>on screen \(String(format: "%.1f", t.secondsOnScreen)) s (\(clock(t.firstSeconds))&ndash;\(clock(t.lastSeconds)), \(t.frames) frames)</p></div></div>"
            body += "<div class=\"bar\">" + order.compactMap { k -> String? in
                let share = t.shares[s.classNames[k]] ?? 0
                guard share > 0 else { return nil }
                return String(format: "<span class=\"share\" data-share=\"%.6f\" style=\"width:%.2f%%;background:%@\" title=\"%@ %.1f%%\"></span>",
                              share, 100 * share, colour(k), escape(s.classNames[k]), 100 * share)
            }.joined() + "</div>"
            body += "<p class=\"shares\">" + order.compactMap { k -> String? in
                let share = t.shares[s.classNames[k]] ?? 0
                return share > 0 ? String(format: "%@ %.1f%%", escape(s.classNames[k]), 100 * share) : nil
            }.joined(separator: " &middot; ") + "</p>"
            body += timeline(t, classNames: s.classNames, seconds: s.seconds) + "</section>"
        }
        body += "<h2>How it was made</h2><table class=\"settings\">"
        for (k, v) in s.settings.sorted(by: { $0.key < $1.key }) { body += "<tr><th>\(escape(k))</th><td>\(escape(v))</td></tr>" }
        body += String(format: "<tr><th>wall time</th><td>%.1f s</td></tr></table>", s.wallSeconds)
        let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:820px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:24px}
        .meta{color:#555}.track{border-top:1px solid #ddd;padding:12px 0;break-inside:avoid}.head{display:flex;gap:12px;align-items:center}
        .head h3{margin:0;font-size:15px}.head p{margin:2px 0;color:#555}.head img{border-radius:4px}
        .bar{display:flex;height:14px;width:760px;margin:8px 0 2px;border-radius:3px;overflow:hidden}.share{display:block;height:100%}
        .shares{margin:2px 0 6px;color:#444;font-size:13px}.legend span{margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
        .settings th{text-align:left;padding-right:12px;font-weight:600}svg{display:block}
        """
        let script = s.video == nil ? "" : "<script>function seek(t){var v=document.getElementById('video');v.currentTime=t;v.scrollIntoView();v.play();}</script>"
        return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(title): expressions</title><style>\(style)</style>\(script)</head><body>\(body)</body></html>\n"
    }
}
