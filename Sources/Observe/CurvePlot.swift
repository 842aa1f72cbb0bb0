import Foundation
import Support

/// Training curves as one self-contained SVG (no scripts, fonts or links): a panel per measure (`loss`, `accuracy`,
/// ...) against the epoch, one colour per run, one dash pattern per split (train, test, val), and a legend.
public enum CurvePlot {
    /// Tableau's ten colours, one per run (repeating after ten).
    static let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]
    static let panelWidth = 460.0, panelHeight = 300.0
    /// Room around each panel's plot area: left for the y ticks and label, bottom for the x ticks and label.
    static let left = 72.0, right = 18.0, top = 34.0, bottom = 48.0

    /// How a measure is drawn: its axis label (with the unit) and the factor its values are shown multiplied by.
    static func axis(forMeasure measure: String) -> (label: String, scale: Double) {
        switch measure {
        case "accuracy": return ("accuracy (%)", 100)
        case "loss": return ("loss (mean per sample)", 1)
        case "lr": return ("learning rate", 1)
        case "samples_per_second": return ("throughput (samples/s)", 1)
        case let name where name.hasSuffix("_seconds"): return ("\(name.dropLast(8).replacingOccurrences(of: "_", with: " ")) (s)", 1)
        default: return (measure.replacingOccurrences(of: "_", with: " "), 1)
        }
    }

    /// The dash pattern of a split's lines (train solid).
    static func dashes(forSplit split: String) -> String? {
        switch split {
        case "train": return nil
        case "test": return "7 4"
        case "val": return "2 3"
        default: return "9 3 2 3"
        }
    }

    /// The SVG of `metrics` (metrics.jsonl names) for `runs`.
    public static func svg(runs: [RunCurves], metrics: [String]) -> String {
        // Panels in the order their first metric was asked for; within a panel, one line per run and split.
        var measures: [String] = []
        for metric in metrics where !measures.contains(MetricName.parts(metric).measure) {
            measures.append(MetricName.parts(metric).measure)
        }
        let splits = metrics.map { MetricName.parts($0).split }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let columns = measures.count == 1 ? 1 : 2
        let width = Double(columns) * panelWidth
        let legend = Legend(runs: runs.map(\.name), splits: splits.count > 1 || splits != ["train"] ? splits : [], width: width)
        let height = legend.height + Double((measures.count + columns - 1) / columns) * panelHeight

        var svg = SVGText()
        svg.add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">")
        svg.add("<title>\(escapeXML("training curves: " + runs.map(\.name).joined(separator: ", ")))</title>")
        svg.add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
        legend.draw(into: &svg)
        for (index, measure) in measures.enumerated() {
            let series = runs.enumerated().flatMap { runIndex, run in
                metrics.filter { MetricName.parts($0).measure == measure }.compactMap { metric -> Series? in
                    let points = run.epochs.compactMap { epoch in epoch[metric].flatMap { value in epoch["epoch"].map { ($0, value) } } }
                    return points.isEmpty ? nil : Series(points: points, colour: colours[runIndex % colours.count],
                                                         dashes: dashes(forSplit: MetricName.parts(metric).split))
                }
            }
            let origin = (x: Double(index % columns) * panelWidth, y: legend.height + Double(index / columns) * panelHeight)
            drawPanel(measure: measure, series: series, at: origin, into: &svg)
        }
        svg.add("</svg>")
        return svg.text
    }

    /// One line of a panel: (epoch, value) points.
    struct Series {
        var points: [(x: Double, y: Double)]
        var colour: String
        var dashes: String?
    }

    private static func drawPanel(measure: String, series: [Series], at origin: (x: Double, y: Double), into svg: inout SVGText) {
        let (label, scale) = axis(forMeasure: measure)
        let plot = (x: origin.x + left, y: origin.y + top, width: panelWidth - left - right, height: panelHeight - top - bottom)
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map { $0.y * scale } }
        let xTicks = ticks(from: xs.min() ?? 1, to: xs.max() ?? 1, integers: true)
        let yTicks = ticks(from: ys.min() ?? 0, to: ys.max() ?? 1, integers: false)
        func px(_ x: Double) -> Double { plot.x + (x - xTicks.low) / (xTicks.high - xTicks.low) * plot.width }
        func py(_ y: Double) -> Double { plot.y + plot.height - (y - yTicks.low) / (yTicks.high - yTicks.low) * plot.height }

        svg.add("<g>")
        svg.add("<text x=\"\(format(plot.x + plot.width / 2))\" y=\"\(format(origin.y + 22))\" text-anchor=\"middle\" "
            + "font-size=\"14\" font-weight=\"bold\">\(escapeXML(measure.replacingOccurrences(of: "_", with: " ")))</text>")
        for value in yTicks.values {
            let y = py(value)
            svg.add("<line x1=\"\(format(plot.x))\" y1=\"\(format(y))\" x2=\"\(format(plot.x + plot.width))\" y2=\"\(format(y))\" stroke=\"#e5e5e5\"/>")
            svg.add("<line x1=\"\(format(plot.x - 5))\" y1=\"\(format(y))\" x2=\"\(format(plot.x))\" y2=\"\(format(y))\" stroke=\"#333\"/>")
            svg.add("<text x=\"\(format(plot.x - 8))\" y=\"\(format(y + 4))\" text-anchor=\"end\">\(tickLabel(value, step: yTicks.step))</text>")
        }
        for value in xTicks.values {
            let x = px(value)
            svg.add("<line x1=\"\(format(x))\" y1=\"\(format(plot.y))\" x2=\"\(format(x))\" y2=\"\(format(plot.y + plot.height))\" stroke=\"#f0f0f0\"/>")
            svg.add("<line x1=\"\(format(x))\" y1=\"\(format(plot.y + plot.height))\" x2=\"\(format(x))\" y2=\"\(format(plot.y + plot.height + 5))\" stroke=\"#333\"/>")
            svg.add("<text x=\"\(format(x))\" y=\"\(format(plot.y + plot.height + 18))\" text-anchor=\"middle\">\(tickLabel(value, step: xTicks.step))</text>")
        }
        svg.add("<rect x=\"\(format(plot.x))\" y=\"\(format(plot.y))\" width=\"\(format(plot.width))\" height=\"\(format(plot.height))\" "
            + "fill=\"none\" stroke=\"#333\"/>")
        svg.add("<text x=\"\(format(plot.x + plot.width / 2))\" y=\"\(format(plot.y + plot.height + 36))\" text-anchor=\"middle\">epoch</text>")
        let labelY = plot.y + plot.height / 2
        svg.add("<text x=\"\(format(origin.x + 16))\" y=\"\(format(labelY))\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 \(format(origin.x + 16)) \(format(labelY)))\">\(escapeXML(label))</text>")
        for line in series {
            let points = line.points.map { "\(format(px($0.x))),\(format(py($0.y * scale)))" }
            let dash = line.dashes.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            if points.count > 1 {
                svg.add("<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(line.colour)\" "
                    + "stroke-width=\"2\" stroke-linejoin=\"round\"\(dash)/>")
            }
            if points.count <= 60 {
                for point in line.points {
                    svg.add("<circle cx=\"\(format(px(point.x)))\" cy=\"\(format(py(point.y * scale)))\" r=\"2.8\" fill=\"\(line.colour)\"/>")
                }
            }
        }
        svg.add("</g>")
    }

    /// Evenly spaced round tick values (steps of 1, 2 or 5 × 10ⁿ) covering `low...high`, and the axis range they span.
    static func ticks(from low: Double, to high: Double, integers: Bool, target: Double = 5)
        -> (values: [Double], step: Double, low: Double, high: Double) {
        var (low, high) = (low, high)
        if high <= low {
            let pad = integers ? 1 : max(abs(low) * 0.05, 1e-9)
            (low, high) = (low - pad, high + pad)
        }
        let raw = (high - low) / target
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let residual = raw / magnitude
        var step = (residual > 5 ? 10 : residual > 2 ? 5 : residual > 1 ? 2 : 1) * magnitude
        if integers { step = max(1, step.rounded()) }
        let first = (low / step).rounded(.down), last = (high / step).rounded(.up)
        let values = (0...Int(last - first)).map { (first + Double($0)) * step }
        return (values, step, first * step, last * step)
    }

    /// A tick's label with as many decimals as its step needs.
    static func tickLabel(_ value: Double, step: Double) -> String {
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        let text = String(format: "%.\(decimals)f", value)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Which colour is which run and which dash pattern which split, above the panels.
    struct Legend {
        let runs: [String]
        let splits: [String]
        let width: Double
        static let rowHeight = 20.0

        /// Each entry's (row, x) when laid out in rows that fit the width (7 px per character is DejaVu Sans at 12 px).
        var layout: [(row: Int, x: Double)] {
            var positions: [(row: Int, x: Double)] = []
            var row = 0, x = 16.0
            for name in runs + splits {
                let entryWidth = 36 + 7 * Double(name.count) + 18
                if x + entryWidth > width - 8 && x > 16 { (row, x) = (row + 1, 16) }
                positions.append((row, x))
                x += entryWidth
            }
            return positions
        }

        var height: Double { 14 + Double((layout.last?.row ?? 0) + 1) * Self.rowHeight }

        func draw(into svg: inout SVGText) {
            for (index, (name, position)) in zip(runs + splits, layout).enumerated() {
                let y = 16 + Double(position.row) * Self.rowHeight
                let isRun = index < runs.count
                let colour = isRun ? CurvePlot.colours[index % CurvePlot.colours.count] : "#555"
                let dash = isRun ? nil : CurvePlot.dashes(forSplit: name)
                svg.add("<line x1=\"\(format(position.x))\" y1=\"\(format(y))\" x2=\"\(format(position.x + 28))\" y2=\"\(format(y))\" "
                    + "stroke=\"\(colour)\" stroke-width=\"\(isRun ? 3 : 2)\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
                svg.add("<text x=\"\(format(position.x + 34))\" y=\"\(format(y + 4))\"\(isRun ? "" : " fill=\"#555\"")>\(escapeXML(name))</text>")
            }
        }
    }
}

/// SVG text built line by line.
struct SVGText {
    private(set) var text = ""
    mutating func add(_ line: String) { text += line + "\n" }
}

/// `text` with XML's special characters escaped, for SVG text and attributes.
func escapeXML(_ text: String) -> String {
    let entities: [Character: String] = ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&apos;"]
    return text.reduce(into: "") { result, character in result += entities[character] ?? String(character) }
}
