//! `perf-metrics report`: per-state timing figures and drift, per-command and
//! per-process-instance CPU and memory with memory trends, for one robot or several side
//! by side, as text, JSON or a page of plots.
//!
//! One folder is read by [`build`] in one streaming pass over each table ([`activity`] and
//! [`services`] over the activity rows with their context, read together by
//! [`crate::join`]; [`resources`]): memory stays bounded whatever the files' size. Several folders are a
//! [`Fleet`]. Rendering is separate: [`text`], [`html`]. A new per-robot section is a
//! field of [`Report`], an accumulator fed in [`build`], and a block in each renderer.

pub mod activity;
pub mod html;
pub mod plots;
pub mod resources;
pub mod services;
pub mod sketch;
pub mod text;
pub mod timeline;
pub mod trend;

use std::io;
use std::path::{Path, PathBuf};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

pub use activity::{ActivitySection, Drift, DriftVerdict, StateStats};
pub use resources::{InstanceStats, ProcessStats, ResourceSection};
pub use services::{ServiceSection, ServiceStateStats};
pub use text::{render_fleet, render_text};
pub use trend::{Trend, Verdict};

pub(crate) use activity::state_order;

use crate::data::{self, Problem};
use crate::window::Window;

/// The report of one folder (one robot).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Directory read.
    pub dir: PathBuf,
    /// `--since`, ns since the epoch.
    pub since_ns: Option<u64>,
    /// `--until`, ns since the epoch.
    pub until_ns: Option<u64>,
    /// `None` when `robot_activity_data` is missing.
    pub robot_activity: Option<ActivitySection>,
    /// Per service and state; `None` when `robot_activity_context_data` is missing.
    pub services: Option<ServiceSection>,
    /// `None` when `system_resource_data` is missing.
    pub system_resources: Option<ResourceSection>,
    /// Lines that could not be read (each also given to the caller's `on_problem`).
    pub malformed_lines: u64,
}

/// Reading a directory failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Neither table is there.
    #[error("no robot_activity_data or system_resource_data in {0}")]
    Empty(PathBuf),
    /// A table exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// Reads both tables in `dir` and computes the report for `window`, streaming. Each bad
/// line is given to `on_problem` (and counted); a missing table leaves its section out.
pub fn build(
    dir: &Path,
    window: Window,
    on_problem: &mut dyn FnMut(&Problem),
) -> Result<Report, ReportError> {
    let mut malformed = 0u64;
    let mut problem = |p: Problem| {
        malformed += 1;
        on_problem(&p);
    };
    let activity_path = dir.join(perf_table::ROBOT_ACTIVITY.name);
    let mut activity = activity::ActivityAcc::default();
    let mut services = services::ServiceAcc::default();
    let joined = crate::join::for_each_activity(dir, &mut problem, &mut |r, who| {
        if window.contains(r.start_ns) {
            activity.add(r);
            services.add(r, who);
        }
    });
    let (has_activity, services) = match joined {
        Ok(join) => (true, services.finish(&join)),
        Err(e) if e.path == activity_path && e.source.kind() == io::ErrorKind::NotFound => {
            (false, None)
        }
        Err(e) => {
            return Err(ReportError::Read {
                path: e.path,
                source: e.source,
            })
        }
    };
    let resource_path = dir.join(perf_table::SYSTEM_RESOURCE.name);
    let mut resources = resources::ResourceAcc::default();
    let has_resources = optional(
        &resource_path,
        data::for_each_resource(&resource_path, &mut problem, &mut |r| {
            if window.contains(r.query_time) {
                resources.add(&r);
            }
        }),
    )?;
    if !has_activity && !has_resources {
        return Err(ReportError::Empty(dir.to_path_buf()));
    }
    Ok(Report {
        dir: dir.to_path_buf(),
        since_ns: window.since,
        until_ns: window.until,
        robot_activity: has_activity.then(|| activity.finish(activity_path)),
        services,
        system_resources: has_resources.then(|| resources.finish(resource_path)),
        malformed_lines: malformed,
    })
}

/// `Ok(true)` if the table was read, `Ok(false)` if it is not there.
fn optional(path: &Path, result: io::Result<()>) -> Result<bool, ReportError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ReportError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Several robots' reports, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// `(name, report)`; names are unique.
    pub robots: Vec<(String, Report)>,
}

impl Fleet {
    /// Whether this is one robot's report (rendered exactly as a single report).
    pub fn single(&self) -> Option<&Report> {
        match self.robots.as_slice() {
            [(_, report)] => Some(report),
            _ => None,
        }
    }
}

/// One folder: the report itself. Several: `{"robots": {"name": report, ...}}` in the
/// order given.
impl Serialize for Fleet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(report) = self.single() {
            return report.serialize(serializer);
        }
        struct Robots<'a>(&'a [(String, Report)]);
        impl Serialize for Robots<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, report) in self.0 {
                    map.serialize_entry(name, report)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("robots", &Robots(&self.robots))?;
        map.end()
    }
}

/// The name of a robot's folder when none is given: its last component.
pub fn default_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}
