//! Both daemons' metrics for Prometheus: one [`prometheus_client`] registry, served as
//! OpenMetrics text on `GET /metrics` ([`server`]) and/or written to a textfile for
//! node_exporter after every cycle ([`textfile`]).
//!
//! The daemon's loop never waits for either: it only updates the metrics (atomics, or a
//! mutex held for a copy) and calls [`CycleDone::notify`], which never blocks. Encoding,
//! serving and file writing happen on the exporter's own threads, so a slow or hostile
//! client, or a hung filesystem under the textfile, costs the loop nothing.
//!
//! ```no_run
//! use prometheus_client::{metrics::counter::Counter, registry::Registry};
//! use perf_daemon::metrics::{Exporter, Exposition, Settings};
//! let mut registry = Registry::default();
//! let rounds = Counter::<u64>::default();
//! registry.register("my_daemon_rounds", "Rounds done", rounds.clone());
//! let settings = Settings {
//!     listen: Some(perf_daemon::metrics::parse_listen("9101").unwrap()),
//!     textfile: None,
//! };
//! let exporter = Exporter::start(Exposition::new(registry), &settings).unwrap();
//! let cycle_done = exporter.cycle_done();
//! loop {
//!     rounds.inc();
//!     cycle_done.notify();
//!     # break;
//! }
//! ```

pub mod labels;
mod listen;
pub mod server;
pub mod textfile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use listen::parse_listen;
pub use server::{Limits, Server};
pub use textfile::{CycleDone, Textfile};

/// The `Content-Type` of what `/metrics` serves.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry shared by the daemon (which updates the metrics in it) and the exporter's
/// threads (which encode it).
#[derive(Debug, Clone)]
pub struct Exposition(Arc<Registry>);

impl Exposition {
    /// Shares `registry`; its metrics are updated through the handles the daemon kept.
    pub fn new(registry: Registry) -> Exposition {
        Exposition(Arc::new(registry))
    }

    /// The OpenMetrics text (what `/metrics` serves), ending in `# EOF`.
    pub fn openmetrics(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail, and the crate's own metrics never fail to
        // encode; a collector that did would only shorten this scrape.
        if prometheus_client::encoding::text::encode(&mut out, &self.0).is_err() {
            log::debug!("a collector failed to encode; serving what was encoded");
        }
        out
    }

    /// The Prometheus text format 0.0.4: the same metrics for node_exporter's textfile
    /// collector, which cannot parse OpenMetrics (`# EOF`, `# UNIT`).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::with_capacity(8192);
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0).is_err() {
            log::debug!("a collector failed to encode; writing what was encoded");
        }
        out
    }
}

/// Registers `<prefix>_build_info{version="..."} 1`, the usual way to tell which build a
/// target runs (a gauge rather than an OpenMetrics info, so that the textfile's older
/// format carries it too).
pub fn register_build_info(registry: &mut Registry, prefix: &str, version: &'static str) {
    let info = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    info.get_or_create(&[("version", version)]).set(1);
    registry.register(
        format!("{prefix}_build_info"),
        "The build running, as a label; always 1",
        info,
    );
}

/// Where to expose the metrics; both off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Serve `GET /metrics` on this address.
    pub listen: Option<SocketAddr>,
    /// Write the exposition to this file after every cycle.
    pub textfile: Option<PathBuf>,
}

impl Settings {
    /// Whether anything is to be exposed.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.textfile.is_some()
    }
}

/// Exposing could not be set up (a start-up error: the daemon exits 1).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address cannot be bound (in use, not an address of this machine, ...).
    #[error("cannot serve /metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A thread or the server's runtime could not be started.
    #[error("cannot start the metrics {what}: {source}")]
    Start {
        what: &'static str,
        source: std::io::Error,
    },
    /// The textfile cannot be written.
    #[error(transparent)]
    Textfile(#[from] textfile::TextfileError),
}

/// The running exposition: the server and/or the textfile writer, each on its own thread.
/// Dropping it stops the server and writes the textfile a last time.
#[derive(Debug)]
pub struct Exporter {
    server: Option<Server>,
    textfile: Option<Textfile>,
}

impl Exporter {
    /// Binds the listen address and writes the textfile once, so that a port in use or an
    /// unwritable path is a start-up error, then starts the threads.
    pub fn start(exposition: Exposition, settings: &Settings) -> Result<Exporter, MetricsError> {
        let textfile = match &settings.textfile {
            Some(path) => Some(Textfile::start(path.clone(), exposition.clone())?),
            None => None,
        };
        let server = match settings.listen {
            Some(addr) => Some(Server::start(addr, exposition, Limits::default())?),
            None => None,
        };
        Ok(Exporter { server, textfile })
    }

    /// The address `/metrics` is served on (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(Server::local_addr)
    }

    /// What the daemon's metrics handle calls after every cycle: the textfile (if any) is
    /// rewritten soon, on its own thread. Never blocks.
    pub fn cycle_done(&self) -> CycleDone {
        self.textfile
            .as_ref()
            .map(Textfile::cycle_done)
            .unwrap_or_default()
    }
}
