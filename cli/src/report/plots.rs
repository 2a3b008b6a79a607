//! The report's charts, drawn by `plotters` into SVG strings.
//!
//! Every chart puts all robots on the same axes, one colour per robot (in the order given),
//! so robots compare at a glance. Text in the SVG is left for the browser to lay out
//! (plotters' built-in size estimate, no font files). A chart that cannot be drawn comes
//! back as an error message for the page, never a panic.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::activity::StateStats;
use super::resources::InstanceStats;
use crate::units::human_ns;

/// Width and height of one chart, px.
const SIZE: (u32, u32) = (640, 280);

/// One colour per robot, by index (a colour-blind-safe set: Okabe & Ito).
pub fn colour(robot: usize) -> RGBColor {
    const PALETTE: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(0, 0, 0),
    ];
    PALETTE[robot % PALETTE.len()]
}

/// A time label for an axis, coarser as the span grows.
fn time_label(seconds: f64, span_seconds: f64) -> String {
    let Ok(ts) = jiff::Timestamp::from_nanosecond((seconds * 1e9) as i128) else {
        return format!("{seconds:.0}");
    };
    let format = if span_seconds < 600.0 {
        "%H:%M:%S"
    } else if span_seconds < 2.0 * 86400.0 {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    ts.strftime(format).to_string()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws with `draw` on a fresh chart-sized SVG and returns it.
fn svg(draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every chart's frame: its title and the room for the axes' labels.
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    title: String,
    size: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", size))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(56);
    builder
}

/// Every chart's legend: the series' labels, boxed.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(err)
}

/// `(min, max)` of `values`, or `None` when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// A range that plotters can draw: never empty; a single value gets `pad` either side.
fn widen(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        (lo - pad, hi + pad)
    }
}

/// The distribution of one state's durations: share of records per log-width bin (ten per
/// decade), log duration axis, one outline per robot.
pub fn distribution(state: &str, robots: &[(&str, &StateStats)]) -> Result<String, String> {
    // (robot, name, bins as (low, high, share of records)).
    type Bins<'a> = (usize, &'a str, Vec<(f64, f64, f64)>);
    let series: Vec<Bins<'_>> = robots
        .iter()
        .enumerate()
        .map(|(i, (name, s))| {
            let total = s.sketch.count().max(1) as f64;
            let bins = s
                .sketch
                .log_bins(10)
                .into_iter()
                .map(|(lo, hi, n)| (lo, hi, n as f64 / total))
                .collect();
            (i, *name, bins)
        })
        .collect();
    let (lo, hi) = bounds(
        series
            .iter()
            .flat_map(|s| s.2.iter().flat_map(|b| [b.0, b.1])),
    )
    .ok_or("no durations above zero")?;
    // Room either side, so that one or two bins show as bars rather than fill the chart.
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let top = bounds(series.iter().flat_map(|s| s.2.iter().map(|b| b.2))).map_or(1.0, |b| b.1);
    svg(|root| {
        let mut chart = frame(root, format!("{state}: distribution of durations"), 16)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..top * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("duration (log scale)")
            .y_desc("share of records")
            .x_label_formatter(&|v| human_ns(*v))
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .draw()
            .map_err(err)?;
        for (i, name, bins) in &series {
            let c = colour(*i);
            chart
                .draw_series(bins.iter().map(|&(l, h, share)| {
                    Rectangle::new([(l, 0.0), (h, share)], c.mix(0.35).filled())
                }))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        legend(&mut chart)
    })
}

/// One state's durations over time: per bin the median (line) and the longest (dots), log
/// duration axis, one colour per robot.
pub fn durations_over_time(state: &str, robots: &[(&str, &StateStats)]) -> Result<String, String> {
    struct Line {
        robot: usize,
        name: String,
        median: Vec<(f64, f64)>,
        max: Vec<(f64, f64)>,
    }
    let lines: Vec<Line> = robots
        .iter()
        .enumerate()
        .map(|(i, (name, s))| {
            let mid = s.bin_width_ns as f64 / 2e9;
            let at = |t: u64| t as f64 / 1e9 + mid;
            Line {
                robot: i,
                name: (*name).to_owned(),
                median: s
                    .timeline
                    .iter()
                    .filter_map(|(t, b)| Some((at(*t), b.sketch.quantile(50.0)?.max(1.0))))
                    .collect(),
                max: s
                    .timeline
                    .iter()
                    .map(|(t, b)| (at(*t), (b.max_ns as f64).max(1.0)))
                    .collect(),
            }
        })
        .collect();
    let (x0, x1) =
        bounds(lines.iter().flat_map(|l| l.max.iter().map(|p| p.0))).ok_or("no records")?;
    // A single bin: a second either side.
    let (x0, x1) = widen(x0, x1, 1.0);
    let (y0, y1) = bounds(
        lines
            .iter()
            .flat_map(|l| l.median.iter().chain(&l.max).map(|p| p.1)),
    )
    .ok_or("no records")?;
    let (y0, y1) = (y0 / 1.5, y1 * 1.5);
    let span = x1 - x0;
    svg(|root| {
        let mut chart = frame(root, format!("{state}: durations over time"), 16)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (UTC)")
            .y_desc("duration (log scale)")
            .x_labels(6)
            .x_label_formatter(&|v| time_label(*v, span))
            .y_label_formatter(&|v| human_ns(*v))
            .draw()
            .map_err(err)?;
        for l in &lines {
            let c = colour(l.robot);
            chart
                .draw_series(LineSeries::new(l.median.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} median", l.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], c.stroke_width(2)));
            // Dots on the line too: a single bin has no line to draw.
            chart
                .draw_series(l.median.iter().map(|&p| Circle::new(p, 2, c.filled())))
                .map_err(err)?;
            chart
                .draw_series(
                    l.max
                        .iter()
                        .map(|&p| Circle::new(p, 2, c.mix(0.5).filled())),
                )
                .map_err(err)?
                .label(format!("{} longest", l.name))
                .legend(move |(x, y)| Circle::new((x + 6, y), 3, c.mix(0.5).filled()));
        }
        legend(&mut chart)
    })
}

/// What a per-command chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Memory %, with each instance's trend line.
    Memory,
    /// CPU % of one core.
    Cpu,
}

/// One command's memory or CPU over time: one line per process instance (a restart starts
/// a new line), the trend line dashed over memory; one colour per robot.
pub fn process_over_time(
    command: &str,
    measure: Measure,
    robots: &[(&str, Vec<&InstanceStats>)],
) -> Result<String, String> {
    let hour = 3600.0;
    // (robot, name, points, trend line from first to last sample).
    type Series<'a> = (usize, &'a str, Vec<(f64, f64)>, Option<[(f64, f64); 2]>);
    let mut series: Vec<Series<'_>> = Vec::new();
    for (r, (name, instances)) in robots.iter().enumerate() {
        for i in instances {
            let first = i.first_sample_ns as f64 / 1e9;
            let points: Vec<(f64, f64)> = i
                .timeline
                .iter()
                .filter_map(|(_, b)| {
                    let t = first + b.hours_sum / b.samples as f64 * hour;
                    match measure {
                        Measure::Memory => Some((t, b.memory())),
                        Measure::Cpu => b.cpu_percent().map(|c| (t, c)),
                    }
                })
                .collect();
            let trend = match (measure, i.memory.slope_percent_per_hour) {
                (Measure::Memory, Some(b)) => {
                    let last_h = (i.last_sample_ns - i.first_sample_ns) as f64 / 3.6e12;
                    Some([
                        (first, i.memory.intercept),
                        (first + last_h * hour, i.memory.intercept + b * last_h),
                    ])
                }
                _ => None,
            };
            series.push((r, name, points, trend));
        }
    }
    let xs = series.iter().flat_map(|s| {
        s.2.iter()
            .map(|p| p.0)
            .chain(s.3.iter().flatten().map(|p| p.0))
    });
    let (x0, x1) = bounds(xs).ok_or("no samples")?;
    let (x0, x1) = widen(x0, x1, 1.0);
    let ys = series.iter().flat_map(|s| {
        s.2.iter()
            .map(|p| p.1)
            .chain(s.3.iter().flatten().map(|p| p.1))
    });
    let (y0, y1) = bounds(ys).ok_or("no samples")?;
    let (y0, y1) = widen(y0.min(0.0), y1 * 1.1, 1.0);
    let span = x1 - x0;
    let (title, y_desc) = match measure {
        Measure::Memory => ("memory", "memory (% of the machine)"),
        Measure::Cpu => ("CPU", "CPU (% of one core)"),
    };
    svg(|root| {
        let mut chart = frame(root, format!("{title}: {}", shorten(command, 80)), 14)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (UTC)")
            .y_desc(y_desc)
            .x_labels(6)
            .x_label_formatter(&|v| time_label(*v, span))
            .draw()
            .map_err(err)?;
        let mut labelled = vec![false; robots.len()];
        for (r, name, points, trend) in &series {
            let c = colour(*r);
            let drawn = chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?;
            if !labelled[*r] {
                labelled[*r] = true;
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 12, y)], c.stroke_width(2))
                });
            }
            if points.len() == 1 {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(err)?;
            }
            if let Some(line) = trend {
                chart
                    .draw_series(DashedLineSeries::new(
                        line.iter().copied(),
                        6,
                        4,
                        BLACK.mix(0.7).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        legend(&mut chart)
    })
}

/// At most `n` characters of `text`, with an ellipsis when cut.
fn shorten(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(n - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ActivityRef, ResourceRef};
    use crate::report::activity::ActivityAcc;
    use crate::report::resources::ResourceAcc;

    fn state(durations: &[u64]) -> StateStats {
        let mut acc = ActivityAcc::default();
        for (i, &d) in durations.iter().enumerate() {
            acc.add(ActivityRef {
                state: "CALIBRATING",
                start_ns: 1_700_000_000_000_000_000 + i as u64,
                duration_ns: d,
            });
        }
        acc.finish("f".into()).states.remove(0)
    }

    #[test]
    fn edge_cases_draw_or_say_why_never_panic() {
        // One record: both charts draw (a single bin).
        let one = state(&[5_000_000]);
        for chart in [
            distribution("CALIBRATING", &[("a", &one)]),
            durations_over_time("CALIBRATING", &[("a", &one), ("b", &one)]),
        ] {
            assert!(chart.unwrap().starts_with("<svg"));
        }
        // Only zero-length durations: no log-scale histogram, said so.
        let zeros = state(&[0, 0]);
        assert!(distribution("CALIBRATING", &[("a", &zeros)]).is_err());
        assert!(durations_over_time("CALIBRATING", &[("a", &zeros)]).is_ok());

        // One sample of one process: a dot for memory, no CPU rate yet.
        let mut acc = ResourceAcc::default();
        acc.add(&ResourceRef {
            query_time: 1_700_000_000_000_000_000,
            command: "python3 x".into(),
            running_since: 1.0,
            user_cpu_time: 1.0,
            system_cpu_time: 0.0,
            memory_percent: 2.5,
        });
        let section = acc.finish("f".into());
        let instances: Vec<&InstanceStats> = section.instances.iter().collect();
        let robots = [("a", instances)];
        assert!(process_over_time("python3 x", Measure::Memory, &robots)
            .unwrap()
            .contains("<circle"));
        assert!(process_over_time("python3 x", Measure::Cpu, &robots).is_err());
        assert!(process_over_time("none", Measure::Memory, &[]).is_err());
    }

    #[test]
    fn time_labels_coarsen_with_the_span() {
        let t = 1_722_450_000.0;
        assert_eq!(time_label(t, 60.0), "18:20:00");
        assert_eq!(time_label(t, 7200.0), "18:20");
        assert_eq!(time_label(t, 10.0 * 86400.0), "07-31 18:20");
    }
}
