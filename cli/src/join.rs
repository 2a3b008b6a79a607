//! `robot_activity_data` read together with `robot_activity_context_data`: each record with
//! the service, pid and thread that wrote it, when the context table has it.
//!
//! What the drainer guarantees (`perf-drainer`'s `commit.rs` and `rows.rs`): every round
//! appends the same records in the same order to both tables, and one checkpoint covers
//! both lengths, so from the moment the context table is kept its rows are exactly the
//! data table's rows. The context table can still hold fewer rows: it started later (an
//! older storage directory), or it was turned off for a while and on again (the drainer
//! carries its checkpointed state along and appends where it left off, so the context
//! table is then the data table with holes). The context table is therefore an ordered
//! subsequence of the data table, not just a suffix, and rows are matched by identity in
//! order: the next unmatched context row is the data row's context when its state, start
//! and duration are the data row's.
//!
//! Files off robots are not always what the drainer wrote (a hand edit, a malformed line
//! skipped on one side, a data file cut by someone else), so matching resynchronises: the
//! next [`LOOKAHEAD`] context rows are indexed, and a data row found further ahead skips
//! the context rows before it (counted as [`JoinStats::context_unmatched`]). A data row
//! with no match falls back to having no context. Context rows left when the data ends (a
//! context table longer than the data) are counted the same way, never paired with
//! anything. Nothing here panics on bad input.
//!
//! Both tables are streamed at once in bounded memory: the context table is read by a
//! second thread through the same [`crate::data`] functions and handed over in batches
//! through a bounded channel; at most [`LOOKAHEAD`] rows plus a few batches are held.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use serde::Serialize;

use crate::data::{self, ActivityRef, ContextRef, Problem};

/// Context rows indexed ahead of the current one, for resynchronising after rows that are
/// in only one of the tables.
pub const LOOKAHEAD: usize = 1 << 14;
/// Context rows per message from the reading thread.
const BATCH: usize = 1024;
/// Messages in flight between the threads.
const IN_FLIGHT: usize = 4;
/// Distinct state and service names shared between rows (past that, each row its own).
const INTERN_LIMIT: usize = 256;

/// Who wrote a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Who {
    /// The ring's service name.
    pub service: Arc<str>,
    /// The producer's pid.
    pub pid: u32,
    /// The writing thread's kernel tid.
    pub tid: u32,
}

/// How the two tables matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JoinStats {
    /// Whether `robot_activity_context_data` is there.
    pub context_table: bool,
    /// Rows of `robot_activity_data` read.
    pub rows: u64,
    /// Of those, rows with context.
    pub with_context: u64,
    /// Good rows of the context table.
    pub context_rows: u64,
    /// Context rows that match no data row (skipped; a context table longer than the
    /// data, or rows missing from the data table).
    pub context_unmatched: u64,
}

impl JoinStats {
    /// A line for people about rows that could not be matched, if any.
    pub fn warning(&self, dir: &Path) -> Option<String> {
        (self.context_unmatched > 0).then(|| {
            format!(
                "{}: {} of {} rows of {} match no row of {} (it is longer than the data, or the data lost rows); they are left out",
                dir.display(),
                self.context_unmatched,
                self.context_rows,
                perf_table::ROBOT_ACTIVITY_CONTEXT.name,
                perf_table::ROBOT_ACTIVITY.name,
            )
        })
    }
}

/// A table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// A context row, owned, as the reading thread hands it over.
#[derive(Debug)]
struct Row {
    state: Arc<str>,
    start_ns: u64,
    duration_ns: u64,
    who: Who,
}

impl Row {
    fn is(&self, a: &ActivityRef<'_>) -> bool {
        self.start_ns == a.start_ns && self.duration_ns == a.duration_ns && *self.state == *a.state
    }
}

enum Msg {
    Rows(Vec<Row>),
    Problem(Problem),
    End(io::Result<()>),
}

/// Streams `robot_activity_data` in `dir`, giving each good row to `each` with its context
/// (or `None`), and each bad line of either table to `problems`. An error reading the data
/// table (also its absence: [`io::ErrorKind::NotFound`]) or the context table (other than
/// its absence) is returned with the file's path.
pub fn for_each_activity(
    dir: &Path,
    problems: &mut dyn FnMut(Problem),
    each: &mut dyn FnMut(ActivityRef<'_>, Option<&Who>),
) -> Result<JoinStats, ReadError> {
    let data_path = dir.join(perf_table::ROBOT_ACTIVITY.name);
    let context_path = dir.join(perf_table::ROBOT_ACTIVITY_CONTEXT.name);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let reader = scope.spawn(|| read_context(&context_path, tx));
        let mut pending = Pending {
            rx: Some(rx),
            rows: VecDeque::new(),
            index: HashMap::new(),
            end: None,
            stats: JoinStats::default(),
        };
        // Both callbacks report problems, never at the same time.
        let problems = RefCell::new(problems);
        let result =
            data::for_each_activity(&data_path, &mut |p| (problems.borrow_mut())(p), &mut |a| {
                pending.stats.rows += 1;
                let who = pending.take(&a, *problems.borrow_mut());
                pending.stats.with_context += u64::from(who.is_some());
                each(a, who.as_ref());
            });
        let problems = problems.into_inner();
        if result.is_ok() {
            // What is left matches nothing; read it to the end to count it.
            loop {
                pending.fill(LOOKAHEAD, problems);
                if pending.rows.is_empty() {
                    break;
                }
                pending.stats.context_unmatched += pending.rows.len() as u64;
                pending.rows.clear();
                pending.index.clear();
            }
        }
        // Stops the reader: its sends fail from now on.
        pending.rx = None;
        let _ = reader.join();
        let mut stats = pending.stats;
        result.map_err(|source| ReadError {
            path: data_path.clone(),
            source,
        })?;
        match pending.end {
            Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Some(Err(source)) => {
                return Err(ReadError {
                    path: context_path.clone(),
                    source,
                })
            }
            _ => stats.context_table = true,
        }
        Ok(stats)
    })
}

/// Reads the context table, sending its rows in batches; stops sending when the other end
/// is gone.
fn read_context(path: &Path, tx: SyncSender<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut states = Interner::default();
    let mut services = Interner::default();
    let open = Cell::new(true);
    let result = data::for_each_context(
        path,
        &mut |p| {
            if open.get() && tx.send(Msg::Problem(p)).is_err() {
                open.set(false);
            }
        },
        &mut |c: ContextRef<'_>| {
            if !open.get() {
                return;
            }
            batch.push(Row {
                state: states.get(c.activity.state),
                start_ns: c.activity.start_ns,
                duration_ns: c.activity.duration_ns,
                who: Who {
                    service: services.get(c.service),
                    pid: c.pid,
                    tid: c.tid,
                },
            });
            if batch.len() == BATCH {
                let rows = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                open.set(tx.send(Msg::Rows(rows)).is_ok());
            }
        },
    );
    if open.get() && !batch.is_empty() {
        let _ = tx.send(Msg::Rows(batch));
    }
    let _ = tx.send(Msg::End(result));
}

/// Shares one allocation per distinct name.
#[derive(Debug, Default)]
struct Interner(Vec<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.iter().find(|a| ***a == *s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = s.into();
        if self.0.len() < INTERN_LIMIT {
            self.0.push(Arc::clone(&a));
        }
        a
    }
}

/// The context rows read ahead, indexed by (start, duration).
struct Pending {
    rx: Option<Receiver<Msg>>,
    rows: VecDeque<Row>,
    index: HashMap<(u64, u64), u32>,
    end: Option<io::Result<()>>,
    stats: JoinStats,
}

impl Pending {
    /// Reads ahead until `want` rows are pending or the table ended.
    fn fill(&mut self, want: usize, problems: &mut dyn FnMut(Problem)) {
        while self.rows.len() < want && self.end.is_none() {
            let Some(rx) = &self.rx else { break };
            match rx.recv() {
                Ok(Msg::Rows(rows)) => {
                    self.stats.context_rows += rows.len() as u64;
                    for r in rows {
                        *self.index.entry((r.start_ns, r.duration_ns)).or_default() += 1;
                        self.rows.push_back(r);
                    }
                }
                Ok(Msg::Problem(p)) => problems(p),
                Ok(Msg::End(result)) => self.end = Some(result),
                Err(_) => self.end = Some(Ok(())),
            }
        }
    }

    fn pop(&mut self) -> Option<Row> {
        let r = self.rows.pop_front()?;
        let key = (r.start_ns, r.duration_ns);
        if let Some(n) = self.index.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.index.remove(&key);
            }
        }
        Some(r)
    }

    /// The context of data row `a`, if the context table has it.
    fn take(&mut self, a: &ActivityRef<'_>, problems: &mut dyn FnMut(Problem)) -> Option<Who> {
        self.fill(LOOKAHEAD, problems);
        if self.rows.front()?.is(a) {
            return self.pop().map(|r| r.who);
        }
        if !self.index.contains_key(&(a.start_ns, a.duration_ns)) {
            return None;
        }
        // Further ahead: the context rows before it are in no data row.
        let at = self.rows.iter().position(|r| r.is(a))?;
        self.stats.context_unmatched += at as u64;
        for _ in 0..at {
            self.pop();
        }
        self.pop().map(|r| r.who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, start: u64, dur: u64) -> String {
        format!("\"{state}\",\"{start}\",\"{dur}\"\r\n")
    }

    fn ctx(state: &str, start: u64, dur: u64, service: &str, pid: u32, tid: u32) -> String {
        format!("\"{state}\",\"{start}\",\"{dur}\",\"{service}\",\"{pid}\",\"{tid}\"\r\n")
    }

    type Joined = Vec<(String, u64, Option<(String, u32)>)>;

    fn join(data: &str, context: Option<&str>) -> (Joined, JoinStats, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("robot_activity_data"), data).unwrap();
        if let Some(c) = context {
            std::fs::write(dir.path().join("robot_activity_context_data"), c).unwrap();
        }
        let mut got = Vec::new();
        let mut bad = Vec::new();
        let stats = for_each_activity(dir.path(), &mut |p| bad.push(p.line), &mut |a, w| {
            got.push((
                a.state.to_owned(),
                a.start_ns,
                w.map(|w| (w.service.to_string(), w.tid)),
            ))
        })
        .unwrap();
        (got, stats, bad)
    }

    #[test]
    fn a_context_table_that_started_later_covers_the_later_rows() {
        let data: String = (0..10).map(|i| row("A", i, 1)).collect();
        let context: String = (6..10)
            .map(|i| ctx("A", i, 1, "svc", 7, 70 + i as u32))
            .collect();
        let (got, stats, bad) = join(&data, Some(&context));
        assert!(bad.is_empty());
        let with: Vec<u64> = got.iter().filter(|g| g.2.is_some()).map(|g| g.1).collect();
        assert_eq!(with, [6, 7, 8, 9]);
        assert_eq!(got[7].2, Some(("svc".into(), 77)));
        assert_eq!(
            stats,
            JoinStats {
                context_table: true,
                rows: 10,
                with_context: 4,
                context_rows: 4,
                context_unmatched: 0
            }
        );
    }

    #[test]
    fn a_hole_malformed_rows_and_a_longer_context_table_are_survived() {
        // Data: 0..8, with row 5 malformed. Context: 0..2 (then turned off), 4..8 with row
        // 6 malformed, then two rows the data does not have.
        let mut data = String::new();
        for i in 0..8 {
            data += &if i == 5 {
                "\"A\",\"x\",\"1\"\r\n".into()
            } else {
                row("A", i, 1)
            };
        }
        let mut context = String::new();
        for i in (0..2).chain(4..8) {
            context += &if i == 6 {
                "\"A\",\"6\",\"1\",\"svc\",\"-1\",\"1\"\r\n".into()
            } else {
                ctx("A", i, 1, "svc", 1, i as u32)
            };
        }
        context += &ctx("A", 100, 1, "svc", 1, 9);
        context += &ctx("A", 101, 1, "svc", 1, 9);
        let (got, stats, mut bad) = join(&data, Some(&context));
        bad.sort();
        assert_eq!(bad, [5, 6]);
        let with: Vec<(u64, bool)> = got.iter().map(|g| (g.1, g.2.is_some())).collect();
        assert_eq!(
            with,
            [
                (0, true),
                (1, true),
                (2, false),
                (3, false),
                (4, true),
                (6, false),
                (7, true)
            ]
        );
        // Context row 5 (its data row was malformed) and the two extra ones.
        assert_eq!(stats.context_unmatched, 3);
        assert_eq!(stats.context_rows, 7);
        assert!(stats.warning(Path::new("d")).unwrap().contains("3 of 7"));
    }

    #[test]
    fn without_a_context_table_every_row_has_none() {
        let (got, stats, _) = join(&(row("A", 1, 2) + &row("B", 3, 4)), None);
        assert!(got.iter().all(|g| g.2.is_none()));
        assert_eq!(got.len(), 2);
        assert!(!stats.context_table);
        assert_eq!(stats.warning(Path::new("d")), None);
    }

    #[test]
    fn long_tables_stream_through_the_lookahead() {
        let n = 3 * LOOKAHEAD as u64 + 17;
        let data: String = (0..n).map(|i| row("A", i, i % 3)).collect();
        // The context table starts a lookahead and a half in.
        let from = LOOKAHEAD as u64 * 3 / 2;
        let context: String = (from..n).map(|i| ctx("A", i, i % 3, "s", 1, 2)).collect();
        let (got, stats, _) = join(&data, Some(&context));
        assert_eq!(got.len() as u64, n);
        assert_eq!(stats.with_context, n - from);
        assert!(got[from as usize].2.is_some() && got[from as usize - 1].2.is_none());
        assert_eq!(stats.context_unmatched, 0);
    }
}
