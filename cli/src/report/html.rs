//! `report --html`: one self-contained page of plots and tables.
//!
//! Everything is inline (SVG charts from [`super::plots`], CSS, one small script), so the
//! page opens from a USB stick with no network. Per state: the distribution of durations
//! and the durations over time; per command: memory (with each process instance's trend
//! line) and CPU over time; then the text report's own tables ([`super::text`]). With
//! several robots every chart has them all on the same axes, one colour each.
//!
//! The script only checks the page: it counts the charts the browser actually laid out
//! (non-empty boxes) and the tables, and writes the counts and any script error into
//! `data-` attributes of `<body>`, which the browser test reads back.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;

use perf_daemon::text_table::Align;

use super::plots::{self, Measure};
use super::resources::InstanceStats;
use super::text::{fleet_blocks, Block};
use super::{Fleet, StateStats};

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\
h3{font-size:1em;margin:1.2em 0 .3em}figure{display:inline-block;margin:.3em}\
figure.failed{color:#a00}\
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}\
th,td{padding:.15em .6em;border-bottom:1px solid #eee;white-space:nowrap}\
th{text-align:left;background:#f4f4f4}td.r{text-align:right;font-variant-numeric:tabular-nums}\
p.note{color:#555;font-size:.9em}.legend span{display:inline-block;margin-right:1em}\
.swatch{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin-right:.3em}";

/// Registered first, so any later script error is recorded.
const SCRIPT_HEAD: &str = "window.__errors=[];\
window.addEventListener('error',function(e){window.__errors.push(String(e.message));});";

/// Counts what the browser laid out, into `data-` attributes of `<body>`.
const SCRIPT_CHECK: &str = "(function(){\
var plots=0;document.querySelectorAll('figure.plot svg').forEach(function(s){\
var b=s.getBoundingClientRect();if(b.width>0&&b.height>0&&s.querySelector('text'))plots++;});\
var d=document.body.dataset;d.plotsRendered=String(plots);\
d.tablesRendered=String(document.querySelectorAll('table.report tr').length>0?\
document.querySelectorAll('table.report').length:0);\
d.scriptErrors=String(window.__errors.length);d.checked='yes';})();";

fn figure(out: &mut String, kind: &str, chart: Result<String, String>) {
    match chart {
        Ok(svg) => {
            let _ = write!(
                out,
                "<figure class=\"plot\" data-plot=\"{kind}\">{svg}</figure>"
            );
        }
        Err(why) => {
            let _ = write!(
                out,
                "<figure class=\"failed\" data-plot=\"{kind}\">chart not drawn: {}</figure>",
                esc(&why)
            );
        }
    }
}

fn table_html(out: &mut String, t: &perf_daemon::text_table::Table) {
    out.push_str("<table class=\"report\">");
    for (i, row) in t.cells().iter().enumerate() {
        out.push_str("<tr>");
        for (cell, align) in row.iter().zip(t.aligns()) {
            let (tag, class) = match (i, align) {
                (0, _) => ("th", ""),
                (_, Align::Right) => ("td", " class=\"r\""),
                (_, Align::Left) => ("td", ""),
            };
            let _ = write!(out, "<{tag}{class}>{}</{tag}>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The page for `fleet`. The same reports give the same bytes.
pub fn render(fleet: &Fleet) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<title>perf-metrics report</title>");
    let _ = write!(out, "<style>{STYLE}</style><script>{SCRIPT_HEAD}</script>");
    out.push_str("</head>\n<body>\n<h1>Performance metrics report</h1>\n<p class=\"legend\">");
    for (i, (name, report)) in fleet.robots.iter().enumerate() {
        let c = plots::colour(i);
        let _ = write!(
            out,
            "<span><i class=\"swatch\" style=\"background:rgb({},{},{})\"></i>{} ({})</span>",
            c.0,
            c.1,
            c.2,
            esc(name),
            esc(&report.dir.display().to_string())
        );
    }
    out.push_str("</p>\n");

    // Per state, across robots, in the report's state order.
    let mut states: BTreeMap<(usize, String), Vec<(&str, &StateStats)>> = BTreeMap::new();
    for (name, report) in &fleet.robots {
        for s in report.robot_activity.iter().flat_map(|a| &a.states) {
            states
                .entry(super::state_order(&s.state))
                .or_default()
                .push((name, s));
        }
    }
    out.push_str("<h2>Robot activity</h2>\n");
    if states.is_empty() {
        out.push_str("<p>No robot activity records.</p>\n");
    }
    for robots in states.values() {
        let state = &robots[0].1.state;
        let _ = write!(out, "<h3>{}</h3>", esc(state));
        figure(&mut out, "distribution", plots::distribution(state, robots));
        figure(
            &mut out,
            "durations",
            plots::durations_over_time(state, robots),
        );
        out.push('\n');
    }

    // Per command, across robots; each robot's instances of it.
    let mut commands: BTreeMap<&str, Vec<(&str, Vec<&InstanceStats>)>> = BTreeMap::new();
    for (name, report) in &fleet.robots {
        for i in report.system_resources.iter().flat_map(|r| &r.instances) {
            let robots = commands.entry(&i.command).or_default();
            match robots.last_mut() {
                Some((n, list)) if *n == name.as_str() => list.push(i),
                _ => robots.push((name, vec![i])),
            }
        }
    }
    out.push_str(
        "<h2>Processes</h2>\n<p class=\"note\">One line per process instance (a \
        restart starts a new one); dashed: the instance's memory trend (Theil-Sen).</p>\n",
    );
    if commands.is_empty() {
        out.push_str("<p>No process samples.</p>\n");
    }
    for (command, robots) in &commands {
        let _ = write!(out, "<h3>{}</h3>", esc(command));
        figure(
            &mut out,
            "memory",
            plots::process_over_time(command, Measure::Memory, robots),
        );
        figure(
            &mut out,
            "cpu",
            plots::process_over_time(command, Measure::Cpu, robots),
        );
        out.push('\n');
    }

    out.push_str("<h2>Tables</h2>\n");
    for block in fleet_blocks(fleet) {
        match block {
            Block::Line(line) => {
                let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&line));
            }
            Block::Blank => {}
            Block::Table(t) => {
                table_html(&mut out, &t);
                out.push('\n');
            }
        }
    }
    let _ = write!(out, "<script>{SCRIPT_CHECK}</script>\n</body></html>\n");
    out
}

/// Writes the page for `fleet` to `path`: to a temporary file beside it, then renamed over
/// it, so a browser never opens half a page. The file gets the usual mode (0666 less the
/// umask).
pub fn write(path: &Path, fleet: &Fleet) -> io::Result<()> {
    let page = render(fleet);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(page.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
