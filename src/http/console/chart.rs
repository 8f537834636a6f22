//! Charts as inline SVG, drawn on the server: no script, readable without
//! one. Each chart is an image with a title and a description a screen
//! reader speaks, and its numbers are in a table beside it.

use crate::http::page::escape;

/// One point of a line: its label on the x axis, its value (none when
/// nobody answered that week) and how many answers it stands for.
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
    pub count: i64,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// A line through `points` on a y axis from `low` to `high`, with a
/// gridline at each of `ticks`; weeks without answers leave a gap.
pub fn line(id: &str, title: &str, points: &[Point], low: f64, high: f64, ticks: &[f64]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| {
        let steps = points.len().saturating_sub(1).max(1) as f64;
        LEFT + plot_w * i as f64 / steps
    };
    let y = |v: f64| TOP + plot_h * (1.0 - (v - low) / (high - low));
    let mut svg = String::new();
    for &t in ticks {
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{t}</text>",
            WIDTH - RIGHT,
            LEFT - 8.0,
            y(t) + 6.0,
            y = y(t),
        ));
    }
    // Runs of consecutive weeks with a value are joined; a gap breaks it.
    let mut run: Vec<String> = Vec::new();
    let mut paths = String::new();
    let mut dots = String::new();
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => {
                run.push(format!("{:.1},{:.1}", x(i), y(v.clamp(low, high))));
                dots.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\" class=\"dot\"><title>{}: {v} ({} answers)</title></circle>",
                    x(i),
                    y(v.clamp(low, high)),
                    escape(&p.label),
                    p.count
                ));
            }
            None => {
                if run.len() > 1 {
                    paths.push_str(&format!(
                        "<polyline points=\"{}\" class=\"line\"/>",
                        run.join(" ")
                    ));
                }
                run.clear();
            }
        }
        // Every third week's label fits under a phone-sized chart; the
        // latest week is always labelled.
        if (points.len() - 1 - i).is_multiple_of(3) {
            let anchor = if i + 1 == points.len() {
                "end"
            } else {
                "middle"
            };
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"{anchor}\">{}</text>",
                x(i) + if anchor == "end" { RIGHT - 4.0 } else { 0.0 },
                HEIGHT - 12.0,
                escape(&p.label)
            ));
        }
    }
    if run.len() > 1 {
        paths.push_str(&format!(
            "<polyline points=\"{}\" class=\"line\"/>",
            run.join(" ")
        ));
    }
    let answered: Vec<String> = points
        .iter()
        .filter_map(|p| {
            p.value
                .map(|v| format!("{}: {v} ({} answers)", p.label, p.count))
        })
        .collect();
    let desc = if answered.is_empty() {
        "No answers in these weeks.".to_owned()
    } else {
        answered.join("; ")
    };
    format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title\" aria-describedby=\"{id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{svg}{paths}{dots}</svg>",
        escape(title),
        escape(&desc),
    )
}

/// One bar: its label, its share (0 to 1) and what it is a share of.
pub struct Bar {
    pub label: String,
    pub share: f64,
    pub of: i64,
}

/// Horizontal bars, one a row, each labelled with its share.
pub fn bars(id: &str, title: &str, bars: &[Bar]) -> String {
    let row = 34.0;
    let label_w = 230.0;
    let plot_w = WIDTH - label_w - 90.0;
    let height = (bars.len().max(1) as f64) * row + 8.0;
    let mut svg = String::new();
    for (i, b) in bars.iter().enumerate() {
        let top = 4.0 + i as f64 * row;
        let share = b.share.clamp(0.0, 1.0);
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"bar\"><title>{}: {:.1} % of {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{:.1} %</text>",
            label_w - 8.0,
            top + row / 2.0 + 2.0,
            escape(&b.label),
            (plot_w * share).max(1.0),
            row - 8.0,
            escape(&b.label),
            share * 100.0,
            b.of,
            label_w + plot_w * share + 6.0,
            top + row / 2.0 + 2.0,
            share * 100.0,
        ));
    }
    let desc: Vec<String> = bars
        .iter()
        .map(|b| format!("{}: {:.1} % of {}", b.label, b.share * 100.0, b.of))
        .collect();
    format!(
        "<svg viewBox=\"0 0 {WIDTH} {height}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title\" aria-describedby=\"{id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{svg}</svg>",
        escape(title),
        escape(&desc.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_without_answers_breaks_the_line_and_the_description_says_what_is_drawn() {
        let p = |label: &str, value: Option<f64>, count| Point {
            label: label.into(),
            value,
            count,
        };
        let svg = line(
            "nps",
            "NPS <by week>",
            &[
                p("w1", Some(10.0), 3),
                p("w2", None, 0),
                p("w3", Some(20.0), 2),
                p("w4", Some(-5.0), 1),
            ],
            -100.0,
            100.0,
            &[-100.0, 0.0, 100.0],
        );
        assert_eq!(svg.matches("<polyline").count(), 1, "w3–w4 only: {svg}");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("NPS &lt;by week&gt;"));
        assert!(svg.contains("w1: 10 (3 answers); w3: 20 (2 answers); w4: -5 (1 answers)"));
    }

    #[test]
    fn bars_say_their_share() {
        let svg = bars(
            "rate",
            "Response rate",
            &[Bar {
                label: "welcome/day1".into(),
                share: 0.25,
                of: 40,
            }],
        );
        assert!(svg.contains("25.0 %"), "{svg}");
        assert!(svg.contains("welcome/day1: 25.0 % of 40"));
    }
}
