import Foundation
import FERIO

/// Plots drawn with OpenCV's primitives through the bridge: training curves, confusion matrices and
/// reliability diagrams.
public enum Plots {
    static let white: Image.Color = (255, 255, 255)
    static let black: Image.Color = (0, 0, 0)
    static let grid: Image.Color = (225, 225, 225)
    static let blue: Image.Color = (180, 110, 30)
    static let orange: Image.Color = (20, 130, 240)

    /// A line chart: series of (x, y) points with names and colours, axes with ticks.
    static func chart(_ img: inout Image, x0: Int, y0: Int, w: Int, h: Int, title: String,
                      series: [(String, Image.Color, [(Double, Double)])], yRange: (Double, Double)? = nil, yFormat: String = "%.2f") {
        let all = series.flatMap { $0.2 }
        guard let xmin = all.map(\.0).min(), let xlast = all.map(\.0).max(),
              let ylow = all.map(\.1).min(), let yhigh = all.map(\.1).max() else { return }
        let xmax = max(xlast, xmin + 1)
        var (ymin, ymax) = yRange ?? (ylow, yhigh)
        if ymax - ymin < 1e-9 { ymin -= 0.5; ymax += 0.5 }
        let pad = (ymax - ymin) * 0.05
        if yRange == nil { ymin -= pad; ymax += pad }
        func px(_ x: Double) -> Int { x0 + Int((x - xmin) / (xmax - xmin) * Double(w)) }
        func py(_ y: Double) -> Int { y0 + h - Int((y - ymin) / (ymax - ymin) * Double(h)) }
        img.text(title, x0, y0 - 12, scale: 0.55, black, thickness: 1)
        for i in 0...4 {
            let y = ymin + (ymax - ymin) * Double(i) / 4
            img.line(x0, py(y), x0 + w, py(y), grid)
            img.text(String(format: yFormat, y), x0 - 52, py(y) + 4, scale: 0.4, black)
        }
        let xticks = min(Int(xmax - xmin), 10)
        for i in 0...max(xticks, 1) {
            let x = xmin + (xmax - xmin) * Double(i) / Double(max(xticks, 1))
            img.text(String(format: "%.0f", x), px(x) - 6, y0 + h + 16, scale: 0.4, black)
        }
        img.rectangle(x0, y0, w, h, black)
        for (si, (name, color, pts)) in series.enumerated() {
            for (a, b) in zip(pts, pts.dropFirst()) { img.line(px(a.0), py(a.1), px(b.0), py(b.1), color, thickness: 2) }
            if pts.count == 1 { img.rectangle(px(pts[0].0) - 2, py(pts[0].1) - 2, 5, 5, color, thickness: -1) }
            img.line(x0 + 10, y0 + 14 + 18 * si, x0 + 34, y0 + 14 + 18 * si, color, thickness: 2)
            img.text(name, x0 + 40, y0 + 19 + 18 * si, scale: 0.45, black)
        }
    }

    /// Loss and accuracy per epoch, training and validation.
    public static func trainingCurves(_ history: [EpochRecord]) -> Image {
        var img = Image(width: 1000, height: 420, channels: 3, fill: 255)
        let e = history.map { Double($0.epoch) }
        chart(&img, x0: 70, y0: 40, w: 380, h: 320, title: "cross-entropy loss",
              series: [("train", blue, Array(zip(e, history.map(\.trainLoss)))),
                       ("validation", orange, Array(zip(e, history.map(\.validationLoss))))])
        chart(&img, x0: 590, y0: 40, w: 380, h: 320, title: "accuracy (%)",
              series: [("train", blue, Array(zip(e, history.map { 100 * $0.trainAccuracy }))),
                       ("validation", orange, Array(zip(e, history.map { 100 * $0.validationAccuracy })))], yFormat: "%.1f")
        img.text("epoch", 240, 410, scale: 0.45, black)
        img.text("epoch", 760, 410, scale: 0.45, black)
        return img
    }

    /// The confusion matrix as a heat map: cells shaded by the share of the true class, with counts.
    public static func confusionMatrix(_ report: ClassificationReport, title: String) -> Image {
        let k = report.classes.count, cell = 70, left = 110, top = 70
        var img = Image(width: left + k * cell + 30, height: top + k * cell + 60, channels: 3, fill: 255)
        img.text(title, 10, 25, scale: 0.55, black)
        img.text("predicted", left + k * cell / 2 - 40, 45, scale: 0.45, black)
        for (i, row) in report.confusion.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (j, v) in row.enumerated() {
                let share = Double(v) / Double(total)
                let shade = UInt8(255 - Int(share * 200))
                let color: Image.Color = (255, shade, shade)  // blue-ish, darker = larger share
                img.rectangle(left + j * cell, top + i * cell, cell, cell, color, thickness: -1)
                img.rectangle(left + j * cell, top + i * cell, cell, cell, grid)
                let text = "\(v)", pct = String(format: "%.0f%%", share * 100)
                let tc: Image.Color = share > 0.55 ? white : black
                img.text(text, left + j * cell + 8, top + i * cell + 30, scale: 0.5, tc)
                img.text(pct, left + j * cell + 8, top + i * cell + 52, scale: 0.4, tc)
            }
            img.text(String(report.classes[i].name.prefix(9)), 8, top + i * cell + 40, scale: 0.45, black)
        }
        for j in 0..<k { img.text(String(report.classes[j].name.prefix(7)), left + j * cell + 4, top + k * cell + 18, scale: 0.4, black) }
        img.text(String(format: "accuracy %.2f%%, n = %d (rows: true class)", report.accuracy * 100, report.count), left, top + k * cell + 45, scale: 0.45, black)
        return img
    }

    /// The reliability diagram: per confidence bin, the share of faces that were right (bars)
    /// against the diagonal a calibrated model would follow; the bins' face counts underneath.
    public static func reliabilityDiagram(_ bins: [TemperatureCalibration.Bin], title: String) -> Image {
        let x0 = 70, y0 = 50, side = 420
        var img = Image(width: x0 + side + 40, height: y0 + side + 90, channels: 3, fill: 255)
        img.text(title, 10, 25, scale: 0.55, black)
        func px(_ v: Double) -> Int { x0 + Int(v * Double(side)) }
        func py(_ v: Double) -> Int { y0 + side - Int(v * Double(side)) }
        for i in 0...4 {
            let v = Double(i) / 4
            img.line(x0, py(v), x0 + side, py(v), grid)
            img.text(String(format: "%.2f", v), x0 - 45, py(v) + 4, scale: 0.4, black)
            img.text(String(format: "%.2f", v), px(v) - 12, y0 + side + 16, scale: 0.4, black)
        }
        for b in bins where b.count > 0 {
            let left = px(b.lower) + 1, width = max(px(b.upper) - px(b.lower) - 2, 1)
            img.rectangle(left, py(b.accuracy), width, py(0) - py(b.accuracy), blue, thickness: -1)
            // The gap to the bin's mean confidence, where a calibrated model's bar would end.
            img.line(left, py(b.confidence), left + width, py(b.confidence), orange, thickness: 2)
        }
        img.line(px(0), py(0), px(1), py(1), black)
        img.rectangle(x0, y0, side, side, black)
        let faces = bins.reduce(0) { $0 + $1.count }
        img.text("confidence of the top class", x0 + side / 2 - 100, y0 + side + 36, scale: 0.45, black)
        img.text("bars: share right; orange: mean confidence", x0, y0 + side + 58, scale: 0.45, blue)
        img.text(String(format: "ECE %.2f%%, n = %d", 100 * TemperatureCalibration.expectedCalibrationError(bins), faces),
                 x0, y0 + side + 80, scale: 0.45, black)
        return img
    }
}
