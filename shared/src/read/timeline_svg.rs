//! The attendance timeline as a picture (issue 16, item 6): an SVG chart
//! drawn with plotters' SVG backend from a [`Timeline`] and what the
//! presentation adds to it (its title and `endedAt`), never from SQL.
//!
//! What it shows, on two panels sharing one UTC time axis: above, viewers
//! per bucket as an area (one vertex per bucket, at the bucket's middle);
//! below, on a scale of its own, joined as bars up and left as bars down
//! from zero in the same bucket; a dashed marker across both at `endedAt`,
//! or, while the presentation runs (no `endedAt`), a "LIVE" badge and a
//! marker at `dataThrough`; the title, the presentation id and the tenant
//! above.
//!
//! Text: plotters' SVG backend escapes `<&"'>` in every text and attribute
//! it writes (plotters-svg 0.3.7, `escape_and_push`), so the texts are
//! handed over raw: escaping them here too would show `&amp;lt;`. What XML
//! cannot hold at all (control characters, U+FFFE, U+FFFF) is replaced by a
//! blank first, and the title is cut to fit the width.
//!
//! Fonts: no font engine (plotters' `ttf` feature would load system fonts,
//! which the Lambda does not have). plotters then estimates text widths
//! from the character count, which is all the layout needs; the SVG holds
//! `<text>` elements in `sans-serif`, laid out by whatever displays it.
//!
//! Decisions where the issue is silent:
//! - The time axis spans the buckets, widened to the marker when it falls
//!   outside them, so the marker always shows.
//! - Ticks fall on whole multiples of a round step (1, 2, 5, 10, 15, 30
//!   minutes, hours, days, weeks) in UTC, as many as fit: `HH:MM` within one
//!   day, with the date in the axis title; `MM-DD HH:MM` when the span
//!   crosses days; the date alone for steps of a day or more.
//! - The bars have their own panel and scale: on the viewers' scale, a
//!   handful of joins among hundreds of viewers was a pixel high. Left bars
//!   are drawn below zero and labelled with their count (no minus sign).
//! - The bars fill the middle 70% of their bucket, so neighbours stay apart
//!   down to 500 buckets (then about a pixel each).
//! - A presentation without counted sessions gets its heading and a note
//!   instead of empty axes.
//! - An untitled presentation is captioned "Untitled presentation".

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::contract::{format_date, parse_rfc3339, Timeline};

/// The picture's size in pixels.
pub const TIMELINE_SVG_SIZE: (u32, u32) = (1200, 600);

/// What the picture shows beyond the [`Timeline`]: the presentation's own
/// fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineHeading {
    pub title: Option<String>,
    /// `endedAt` in ms since the epoch; `None` while it runs.
    pub ended_at_ms: Option<i64>,
}

const VIEWERS: RGBColor = RGBColor(0x46, 0x82, 0xB4);
const JOINED: RGBColor = RGBColor(0x2E, 0x8B, 0x57);
const LEFT: RGBColor = RGBColor(0xCD, 0x5C, 0x5C);
const ENDED: RGBColor = RGBColor(0x44, 0x44, 0x44);
const LIVE: RGBColor = RGBColor(0xD0, 0x1C, 0x3C);
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The stroke of the viewers' area outline, as the SVG writes it: the one
/// polyline of that colour has a vertex per bucket (the tests find it so).
pub const TIMELINE_SVG_VIEWERS_STROKE: &str = "#4682B4";

/// The widest title shown, in average characters (see [`fit`]): the width
/// left of the LIVE badge at the title's size. Ids get about a third of the
/// subtitle's line each, so that they never run into the status beside it.
const TITLE_WIDTH: usize = 64;
const ID_WIDTH: usize = 40;
const FONT: &str = "sans-serif";
/// The same on both panels, so that their time axes line up.
const MARGIN_LEFT: i32 = 14;
const MARGIN_RIGHT: i32 = 34;
const Y_LABELS: i32 = 62;

/// `timeline` drawn as an SVG document (see the module for what it shows).
pub fn timeline_svg(timeline: &Timeline, heading: &TimelineHeading) -> String {
    let mut svg = String::new();
    // The backend writes into a String: nothing here can fail but a bug.
    draw(timeline, heading, &mut svg).expect("drawing an SVG into a String does not fail");
    svg
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(timeline: &Timeline, heading: &TimelineHeading, svg: &mut String) -> DrawResult {
    let root = SVGBackend::with_string(svg, TIMELINE_SVG_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (width, _) = TIMELINE_SVG_SIZE;
    let (header, body) = root.split_vertically(80);

    let title = heading
        .title
        .as_deref()
        .map(|t| fit(&xml_safe(t), TITLE_WIDTH))
        .unwrap_or_else(|| "Untitled presentation".to_string());
    header.draw(&Text::new(
        title,
        (24, 14),
        (FONT, 28).into_font().style(FontStyle::Bold).color(&BLACK),
    ))?;
    let width_s = timeline.bucket_seconds;
    let id = |id: &str| fit(&xml_safe(id), ID_WIDTH);
    let mut subtitle = format!(
        "{} · tenant {}",
        id(&timeline.presentation_id),
        id(&timeline.tenant_id)
    );
    if !timeline.buckets.is_empty() {
        subtitle += &format!(
            " · {} buckets · {} still there at the end",
            bucket_words(width_s),
            timeline.at_end
        );
    }
    header.draw(&Text::new(
        subtitle,
        (24, 52),
        (FONT, 17).into_font().color(&MUTED),
    ))?;

    let data_through = timeline
        .data_through
        .as_deref()
        .and_then(|t| parse_rfc3339(t).ok());
    // The marker: endedAt, else (live) dataThrough.
    let marker = match heading.ended_at_ms {
        Some(ended) => Some((ended, format!("ended {} UTC", hh_mm_ss(ended)), ENDED)),
        None => data_through.map(|t| (t, format!("data through {} UTC", hh_mm_ss(t)), LIVE)),
    };
    let right = Pos::new(HPos::Right, VPos::Top);
    if heading.ended_at_ms.is_none() {
        header.draw(&Text::new(
            "● LIVE",
            (width as i32 - 24, 14),
            (FONT, 28)
                .into_font()
                .style(FontStyle::Bold)
                .color(&LIVE)
                .pos(right),
        ))?;
    }
    if let Some((at, _, colour)) = &marker {
        let status = match heading.ended_at_ms {
            Some(_) => format!("ended {}", format_date(*at)),
            None => format!("data through {}", format_date(*at)),
        };
        header.draw(&Text::new(
            format!("{status} {} UTC", hh_mm_ss(*at)),
            (width as i32 - 24, 52),
            (FONT, 17).into_font().color(colour).pos(right),
        ))?;
    }

    let from = timeline.from.as_deref().and_then(|t| parse_rfc3339(t).ok());
    let Some(from) = from.filter(|_| !timeline.buckets.is_empty()) else {
        body.draw(&Text::new(
            "No counted session yet: nobody has watched for longer than an instant.",
            (width as i32 / 2, 200),
            (FONT, 20)
                .into_font()
                .color(&MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        return root.present();
    };
    let w = width_s.max(1) * 1000;
    // Each bucket `i` is [from + i·w, from + (i+1)·w) (§4's `at`).
    let starts: Vec<i64> = (0..timeline.buckets.len() as i64)
        .map(|i| from + i * w)
        .collect();
    let to = from + w * timeline.buckets.len() as i64;
    let (x0, x1) = match &marker {
        Some((at, _, _)) => (from.min(at.div_euclid(w) * w), to.max(ceil_to(*at, w))),
        None => (from, to),
    };

    // Two panels on one time axis: the viewers above, the joined and left
    // bars below on a scale of their own (on the viewers' scale, a few joins
    // among hundreds of viewers were a pixel high).
    let (plot_width, body_height) = body.dim_in_pixel();
    let (upper, lower) = body.split_vertically(body_height * 55 / 100);
    let axis = TimeAxis::new(x0, x1, i64::from(plot_width) - 110);
    let ticks = || (x0..x1).with_key_points(axis.ticks.clone());
    let tick_label = |t: &i64| axis.label(*t);
    let no_label = |_: &i64| String::new();
    let count_label = |n: &i64| n.abs().to_string();
    let bar = |at: i64| (at + w * 15 / 100, at + w * 85 / 100);

    let most_viewers = timeline
        .buckets
        .iter()
        .map(|b| b.viewers)
        .max()
        .unwrap_or(0);
    let y_top = most_viewers + (most_viewers / 10).max(1);
    let mut viewers = ChartBuilder::on(&upper)
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_top(8)
        // Room between the panels' end labels (this 0, the bars' top).
        .margin_bottom(16)
        .x_label_area_size(0)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(ticks(), 0..y_top)?;
    viewers
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .x_label_formatter(&no_label)
        .y_labels(6)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .y_desc("viewers")
        .draw()?;
    viewers.draw_series(
        AreaSeries::new(
            timeline
                .buckets
                .iter()
                .zip(&starts)
                .map(|(b, at)| (at + w / 2, b.viewers)),
            0,
            VIEWERS.mix(0.25),
        )
        .border_style(VIEWERS.stroke_width(2)),
    )?;

    let most_joined = timeline.buckets.iter().map(|b| b.joined).max().unwrap_or(0);
    let most_left = timeline.buckets.iter().map(|b| b.left).max().unwrap_or(0);
    let (b_bottom, b_top) = (-(most_left.max(1) + 1), most_joined.max(1) + 1);
    let mut flows = ChartBuilder::on(&lower)
        .margin_left(MARGIN_LEFT)
        .margin_right(MARGIN_RIGHT)
        .margin_top(6)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(ticks(), b_bottom..b_top)?;
    flows
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .x_label_formatter(&tick_label)
        .y_label_formatter(&count_label)
        .y_labels(6)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .x_desc(axis.title.clone())
        .y_desc("joined ↑ left ↓")
        .draw()?;
    flows.draw_series(
        timeline
            .buckets
            .iter()
            .zip(&starts)
            .filter(|(b, _)| b.joined > 0)
            .map(|(b, at)| {
                let (a, z) = bar(*at);
                Rectangle::new([(a, 0), (z, b.joined)], JOINED.filled())
            }),
    )?;
    flows.draw_series(
        timeline
            .buckets
            .iter()
            .zip(&starts)
            .filter(|(b, _)| b.left > 0)
            .map(|(b, at)| {
                let (a, z) = bar(*at);
                Rectangle::new([(a, -b.left), (z, 0)], LEFT.filled())
            }),
    )?;
    flows.draw_series(std::iter::once(PathElement::new(
        [(x0, 0), (x1, 0)],
        BLACK.mix(0.5),
    )))?;
    // The bars' legend under the plot, left of the axis title, where no
    // data is (inside the plot it hid the first bars).
    let (_, bottom) = flows.backend_coord(&(x0, b_bottom));
    let (left_edge, _) = flows.backend_coord(&(x0, 0));
    let mut x = left_edge;
    for (name, colour) in [("joined", JOINED), ("left", LEFT)] {
        let y = bottom + 38;
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 14, y + 6)],
            colour.filled(),
        ))?;
        root.draw(&Text::new(
            name,
            (x + 20, y),
            (FONT, 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 90;
    }

    if let Some((at, label, colour)) = &marker {
        let dashes = |x: i64, y0: i64, y1: i64| {
            DashedPathElement::new([(x, y0), (x, y1)], 6, 4, colour.stroke_width(2))
        };
        viewers.draw_series(std::iter::once(dashes(*at, 0, y_top)))?;
        flows.draw_series(std::iter::once(dashes(*at, b_bottom, b_top)))?;
        // The label beside the line's top, on the side with room.
        let (px, py) = viewers.backend_coord(&(*at, y_top));
        let (left_edge, _) = viewers.backend_coord(&(x0, y_top));
        let (right_edge, _) = viewers.backend_coord(&(x1, y_top));
        let (x, h) = if right_edge - px > 200 || px - left_edge < 200 {
            (px + 6, HPos::Left)
        } else {
            (px - 6, HPos::Right)
        };
        root.draw(&Text::new(
            label.clone(),
            (x, py + 4),
            (FONT, 15)
                .into_font()
                .color(colour)
                .pos(Pos::new(h, VPos::Top)),
        ))?;
    }
    root.present()
}

/// The time axis: tick positions, their labels and the axis title.
struct TimeAxis {
    ticks: Vec<i64>,
    format: TickFormat,
    title: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TickFormat {
    /// `HH:MM`: the span lies in one UTC day.
    Time,
    /// `MM-DD HH:MM`: the span crosses days.
    DayAndTime,
    /// `YYYY-MM-DD`: steps of a day or more.
    Date,
}

const MINUTE: i64 = 60_000;
const DAY: i64 = 1440 * MINUTE;

impl TimeAxis {
    /// Ticks over `[start, end]` (ms) for a plot `pixels` wide.
    fn new(start: i64, end: i64, pixels: i64) -> TimeAxis {
        let one_day = start.div_euclid(DAY) == (end - 1).div_euclid(DAY);
        let span = (end - start).max(1);
        let (first, last) = (format_date(start), format_date(end - 1));
        // Room per label: its width at 15 px plus a gap.
        let fits = |step: i64, format: TickFormat| {
            let chars = match format {
                TickFormat::Time => 5,
                TickFormat::DayAndTime => 11,
                TickFormat::Date => 10,
            };
            // About 7 px a character at the labels' size, and a gap.
            let room = chars * 7 + 30;
            span / step <= (pixels / room).max(2)
        };
        let minutes = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];
        let sub_day = if one_day {
            TickFormat::Time
        } else {
            TickFormat::DayAndTime
        };
        let (step, format) = match minutes
            .iter()
            .map(|m| m * MINUTE)
            .find(|&step| fits(step, sub_day))
        {
            Some(step) => (step, sub_day),
            None => {
                let days = [1, 2, 7, 14]
                    .into_iter()
                    .map(|d| d * DAY)
                    .find(|&step| fits(step, TickFormat::Date))
                    .unwrap_or_else(|| {
                        // Whole weeks: as many as it takes.
                        let weeks = span / (7 * DAY) / (pixels / 130).max(2) + 1;
                        weeks * 7 * DAY
                    });
                (days, TickFormat::Date)
            }
        };
        let mut ticks = Vec::new();
        let mut t = ceil_to(start, step);
        while t <= end {
            ticks.push(t);
            t += step;
        }
        let title = match (format, one_day) {
            (TickFormat::Time, _) => format!("time (UTC) on {first}"),
            (TickFormat::DayAndTime, _) => format!("time (UTC), {first} to {last}"),
            (TickFormat::Date, _) => format!("date (UTC), {first} to {last}"),
        };
        TimeAxis {
            ticks,
            format,
            title,
        }
    }

    fn label(&self, t: i64) -> String {
        match self.format {
            TickFormat::Time => hh_mm(t),
            TickFormat::DayAndTime => format!("{} {}", &format_date(t)[5..], hh_mm(t)),
            TickFormat::Date => format_date(t),
        }
    }
}

/// `t` rounded up to a multiple of `step` (since the epoch).
fn ceil_to(t: i64, step: i64) -> i64 {
    -((-t).div_euclid(step)) * step
}

fn hh_mm(ms: i64) -> String {
    let in_day = ms.rem_euclid(DAY);
    format!("{:02}:{:02}", in_day / 3_600_000, in_day / MINUTE % 60)
}

fn hh_mm_ss(ms: i64) -> String {
    format!("{}:{:02}", hh_mm(ms), ms.rem_euclid(MINUTE) / 1000)
}

/// A bucket width for people: `1-minute`, `6-hour`, `2-day`.
fn bucket_words(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}-day", s / 86_400),
        s if s % 3600 == 0 => format!("{}-hour", s / 3600),
        s if s % 60 == 0 => format!("{}-minute", s / 60),
        s => format!("{s}-second"),
    }
}

/// `text` cut (with `…`) to at most `width` average characters, counting a
/// CJK or other wide character as two: there is no font here to measure it.
fn fit(text: &str, width: usize) -> String {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += if u32::from(c) >= 0x2E80 && !('\u{FF61}'..='\u{FFDC}').contains(&c) {
            2
        } else {
            1
        };
        if used > width {
            return format!("{}…", &text[..at]);
        }
    }
    text.to_string()
}

/// `text` with what XML 1.0 cannot hold (control characters, U+FFFE and
/// U+FFFF) replaced by a blank; the SVG backend escapes the rest.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{format_time, TimelineBucket};

    const T0: i64 = 1_632_925_560_000; // 2021-09-29T14:26:00Z

    /// A timeline of one-minute buckets from T0 with these figures.
    fn timeline_of(figures: &[(i64, i64, i64)]) -> Timeline {
        let at = |i: usize| format_time(T0 + i as i64 * MINUTE);
        Timeline {
            presentation_id: "p-1".into(),
            tenant_id: "acme".into(),
            bucket_seconds: 60,
            from: Some(at(0)),
            to: Some(at(figures.len())),
            at_end: 1,
            data_through: Some(format_time(T0 + figures.len() as i64 * MINUTE - 5_000)),
            buckets: figures
                .iter()
                .enumerate()
                .map(|(i, &(viewers, joined, left))| TimelineBucket {
                    at: at(i),
                    viewers,
                    joined,
                    left,
                })
                .collect(),
        }
    }

    fn heading(title: &str, ended: Option<i64>) -> TimelineHeading {
        TimelineHeading {
            title: Some(title.into()),
            ended_at_ms: ended,
        }
    }

    /// The texts of the `<text>` elements (the backend writes a line feed
    /// before and after each, which SVG's white space rules drop).
    fn texts(doc: &roxmltree::Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| {
                let text = n.text().unwrap_or("");
                let text = text.strip_prefix('\n').unwrap_or(text);
                text.strip_suffix('\n').unwrap_or(text).to_string()
            })
            .collect()
    }

    /// The vertices of the viewers' area outline.
    fn outline(doc: &roxmltree::Document) -> Vec<(i32, i32)> {
        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("polyline")
                    && n.attribute("stroke") == Some(TIMELINE_SVG_VIEWERS_STROKE)
            })
            .collect();
        assert_eq!(lines.len(), 1, "one outline of the viewers' colour");
        lines[0]
            .attribute("points")
            .unwrap()
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_outline_has_a_vertex_per_bucket_in_time_order() {
        let figures = [
            (1, 1, 0),
            (3, 2, 0),
            (3, 0, 0),
            (2, 0, 1),
            (5, 3, 0),
            (0, 0, 5),
        ];
        let svg = timeline_svg(&timeline_of(&figures), &heading("t", Some(T0 + 6 * MINUTE)));
        let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
        let points = outline(&doc);
        assert_eq!(points.len(), figures.len());
        assert!(points.windows(2).all(|p| p[0].0 < p[1].0), "{points:?}");
        // Higher counts are higher up (smaller y), equal counts level.
        for (a, pa) in figures.iter().zip(&points) {
            for (b, pb) in figures.iter().zip(&points) {
                assert_eq!(a.0.cmp(&b.0), pb.1.cmp(&pa.1), "{points:?}");
            }
        }
    }

    #[test]
    fn five_hundred_buckets_keep_five_hundred_distinct_vertices() {
        let figures: Vec<_> = (0..500).map(|i| ((i * 7) % 40, 0, 0)).collect();
        let svg = timeline_svg(&timeline_of(&figures), &heading("t", None));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let points = outline(&doc);
        assert_eq!(points.len(), 500);
        assert!(points.windows(2).all(|p| p[0].0 < p[1].0));
    }

    #[test]
    fn the_title_is_escaped_once() {
        let title = r#"<b>Q&A</b> "live" & 'loud' <&"'>"#;
        let svg = timeline_svg(&timeline_of(&[(1, 1, 0)]), &heading(title, Some(T0)));
        assert!(!svg.contains("<b>"), "raw markup in the SVG");
        assert!(!svg.contains("&amp;lt;"), "escaped twice");
        let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
        assert!(texts(&doc).iter().any(|t| t == title), "{:?}", texts(&doc));
        // Ids may hold the same characters.
        let mut t = timeline_of(&[(1, 1, 0)]);
        t.presentation_id = "<p&'\">".into();
        let svg = timeline_svg(&t, &heading("x", None));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert!(texts(&doc)
            .iter()
            .any(|t| t.starts_with("<p&'\"> · tenant acme")));
    }

    #[test]
    fn what_xml_cannot_hold_becomes_a_blank_and_long_titles_are_cut() {
        let svg = timeline_svg(
            &timeline_of(&[(1, 1, 0)]),
            &heading("a\u{0}b\u{1b}c\u{FFFF}\td", None),
        );
        let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
        assert!(texts(&doc).iter().any(|t| t == "a b c  d"));
        let long = "é".repeat(4000);
        let svg = timeline_svg(&timeline_of(&[(1, 1, 0)]), &heading(&long, None));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let expected = format!("{}…", "é".repeat(TITLE_WIDTH));
        assert!(texts(&doc).contains(&expected));
        // Wide characters count twice.
        assert_eq!(fit("漢字漢字", 5), "漢字…");
        assert_eq!(fit("ab", 2), "ab");
    }

    #[test]
    fn a_live_presentation_is_marked_at_its_data() {
        let t = timeline_of(&[(1, 1, 0), (2, 1, 0)]);
        let svg = timeline_svg(&t, &heading("t", None));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let live = texts(&doc);
        assert!(live.contains(&"● LIVE".to_string()), "{live:?}");
        assert!(live.contains(&"data through 14:27:55 UTC".to_string()));
        assert!(!live.iter().any(|t| t.starts_with("ended")));
        // Ended: no badge, the end's marker.
        let svg = timeline_svg(&t, &heading("t", Some(T0 + 90_000)));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let ended = texts(&doc);
        assert!(!ended.iter().any(|t| t.contains("LIVE")), "{ended:?}");
        assert!(ended.contains(&"ended 14:27:30 UTC".to_string()));
        assert!(ended.contains(&"ended 2021-09-29 14:27:30 UTC".to_string()));
    }

    #[test]
    fn bars_are_drawn_for_the_buckets_with_joins_and_departures() {
        let figures = [(1, 1, 0), (3, 2, 0), (3, 0, 0), (2, 0, 1), (0, 0, 2)];
        let svg = timeline_svg(&timeline_of(&figures), &heading("t", Some(T0)));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let filled = |colour: &str| {
            doc.descendants()
                .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(colour))
                .count()
        };
        // One per bucket with a figure, and the legend's swatch.
        assert_eq!(filled("#2E8B57"), 2 + 1);
        assert_eq!(filled("#CD5C5C"), 2 + 1);
    }

    #[test]
    fn without_counted_sessions_there_is_a_note() {
        let mut t = timeline_of(&[]);
        t.from = None;
        t.to = None;
        let svg = timeline_svg(&t, &TimelineHeading::default());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let texts = texts(&doc);
        assert!(texts.contains(&"Untitled presentation".to_string()));
        assert!(texts.iter().any(|t| t.starts_with("No counted session")));
    }

    #[test]
    fn ticks_are_round_times_in_utc() {
        // 14:26 to 15:16 on one day, 1,090 px: every 5 minutes.
        let axis = TimeAxis::new(T0, T0 + 50 * MINUTE, 1090);
        assert_eq!(axis.ticks.first(), Some(&(T0 + 4 * MINUTE)));
        assert_eq!(axis.label(axis.ticks[0]), "14:30");
        assert_eq!(axis.ticks[1] - axis.ticks[0], 5 * MINUTE);
        assert_eq!(axis.title, "time (UTC) on 2021-09-29");
        // Across midnight: the day in each label, both dates in the title.
        let evening = T0 + 9 * 60 * MINUTE;
        let axis = TimeAxis::new(evening, evening + 3 * 60 * MINUTE, 1090);
        assert_eq!(axis.title, "time (UTC), 2021-09-29 to 2021-09-30");
        assert!(axis.ticks.iter().any(|t| axis.label(*t) == "09-30 00:00"));
        // Weeks: dates.
        let axis = TimeAxis::new(T0, T0 + 40 * DAY, 1090);
        assert_eq!(axis.label(axis.ticks[0]).len(), 10);
        assert!(axis.ticks.len() >= 2);
        assert!(axis.ticks.iter().all(|t| t % DAY == 0));
        // Never more labels than fit.
        for span in [MINUTE, 7 * MINUTE, 500 * MINUTE, 3 * DAY, 3000 * DAY] {
            let axis = TimeAxis::new(T0, T0 + span, 1090);
            assert!(
                axis.ticks.len() <= 1090 / 40,
                "{span}: {}",
                axis.ticks.len()
            );
        }
    }

    #[test]
    fn the_viewers_stroke_is_the_colour_as_written() {
        let svg = timeline_svg(&timeline_of(&[(1, 1, 0)]), &heading("t", None));
        assert!(svg.contains(&format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            VIEWERS.0, VIEWERS.1, VIEWERS.2
        )));
        assert_eq!(
            TIMELINE_SVG_VIEWERS_STROKE,
            format!("#{:02X}{:02X}{:02X}", VIEWERS.0, VIEWERS.1, VIEWERS.2)
        );
    }
}
