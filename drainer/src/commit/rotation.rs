//! Rotation, the storage side of the transaction: between two commits, with the tables
//! holding exactly their checkpointed rows.
//!
//! With a size cap ([`perf_table::Rotation`]) a table is rotated between two commits, when it holds
//! exactly the checkpointed rows: before a round is appended, each table that the round
//! would take past the cap is renamed to its next number and a new, empty live file takes
//! its path ([`perf_table::TableFile::rotate`]); then one checkpoint names every new live file (its
//! identity, length 0) with the rings' positions unchanged; then the numbered files are
//! compressed and the oldest pruned ([`archive::settle`]). A kill at any instant:
//!
//! | killed | the next start |
//! | --- | --- |
//! | before a table's rename | nothing to do: the file is the checkpointed one |
//! | after the rename, before the checkpoint | the checkpoint names the numbered file, which holds exactly its committed rows; the live file (created if missing) is not that file, so it is appended to as it is, empty: no row twice, none lost |
//! | after the checkpoint, while compressing or pruning | the live files are the checkpointed ones; `settle` finishes the rest |
//!
//! `settle` runs on the settling thread (module `settler`), for each rotation and at
//! start, only through numbers handed over after every table was reconciled with the
//! checkpoint and that was stored: until then the old checkpoint may name a numbered
//! file, whose inode must not be freed (and reused by a new file) while it does.

use perf_table::{archive, TableSpec};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::settler::{self, Request, Settler};
use super::{Store, Which};
use crate::error::StorageError;
use crate::failpoint::{step_point, Failpoint};
use crate::rows::RoundRows;

impl Store {
    /// Hands `requests` to the settling thread (started on first use; settled inline if
    /// it cannot be).
    fn hand_over(&mut self, requests: Vec<Request>) {
        let Some(rotation) = self.rotation else {
            return;
        };
        if self.settler.is_none() {
            match Settler::spawn(self.dir.clone(), rotation.keep, self.failpoint.clone()) {
                Ok(s) => self.settler = Some(s),
                Err(e) => log::warn!("cannot start the thread that compresses rotated files ({e}); compressing in the drain loop"),
            }
        }
        let left = match &self.settler {
            Some(s) => s.request(requests),
            None => Err(requests),
        };
        if let Err(requests) = left {
            let failed = settler::settle(&self.dir, rotation.keep, &mut self.failpoint, requests);
            self.unsettled |= !failed.is_empty();
        }
    }

    /// At start, or after a rotation that failed half way: every numbered file present
    /// now is settled, since the stored checkpoint names only the live files (called once
    /// they were reconciled with it).
    pub(super) fn settle_present(&mut self) {
        if !self.unsettled || self.rotation.is_none() {
            return;
        }
        self.unsettled = false;
        let mut requests = Vec::new();
        for t in &self.tables {
            let spec = t.which.spec();
            match archive::next_seq(&self.dir, spec) {
                Ok(next) => requests.push(Request {
                    spec,
                    through: next - 1,
                    watched: false,
                }),
                Err(e) => {
                    log::warn!("{e}; rotated files stay as they are for now");
                    self.unsettled = true;
                }
            }
        }
        self.hand_over(requests);
    }

    /// Rotates every table that `rows` would take past the cap, then stores the checkpoint
    /// naming the new live files and settles (see the module documentation). Called between
    /// commits only: each table holds exactly its checkpointed rows.
    pub(super) fn rotate_due(
        &mut self,
        rows: &RoundRows,
        failpoint: &mut Failpoint,
    ) -> Result<(), StorageError> {
        let Some(rotation) = self.rotation else {
            return Ok(());
        };
        let mut rotated = false;
        let mut settle = Vec::new();
        let mut failed = Ok(());
        for t in &mut self.tables {
            let Some(open) = &mut t.open else { continue };
            let incoming = match t.which {
                Which::Compat => rows.compat.len(),
                Which::Context => rows.context.as_ref().map_or(0, Vec::len),
            };
            // Only before an append: a commit without rows (a ring forgotten) leaves even a
            // file over the cap (lowered since) as it is, rather than rotating it away.
            if incoming == 0 || !rotation.due(open.file.len(), incoming as u64) {
                continue;
            }
            let before = open.file.identity();
            let result = open
                .file
                .rotate_watched(&mut |step| failpoint.hit(step_point(step)));
            // Even a rotation that failed half way may have a new live file open: the
            // checkpoint must name it before anything is appended to it, or a kill after
            // the next append would keep rows the rings give again.
            (open.dev, open.ino) = open.file.identity();
            rotated |= open.file.identity() != before;
            match result {
                Ok(seq) => settle.push(Request {
                    spec: t.which.spec(),
                    through: seq,
                    watched: true,
                }),
                Err(e) => {
                    failed = Err(e);
                    break;
                }
            }
            failpoint.hit("rotate-created");
        }
        if !rotated {
            return Ok(failed?);
        }
        let mut next = self.ckpt.clone();
        for t in &self.tables {
            if let Some(open) = &t.open {
                *t.which.state(&mut next) = Some(open.state());
            }
        }
        next.store(&self.dir)?;
        self.ckpt = next;
        // A table that failed half way may have been renamed: its number is settled by the
        // next open. Only now, with the checkpoint naming its new live file durable (had
        // the store failed, the checkpoint in force could still name that number).
        self.unsettled |= failed.is_err();
        failpoint.hit("rotate-checkpoint");
        // Only now may the numbered files be freed: nothing durable names them.
        self.hand_over(settle);
        failed?;
        Ok(())
    }
}

/// The rotated, not yet compressed file of `spec` that is the file `identity` names, if any:
/// what a checkpoint names after a kill between a rotation's rename and its checkpoint.
pub(super) fn rotated_to(dir: &Path, spec: &TableSpec, identity: (u64, u64)) -> Option<PathBuf> {
    let segs = archive::segments(dir, spec).ok()?;
    segs.into_iter()
        .filter(|s| !s.compressed)
        .find(|s| std::fs::symlink_metadata(&s.path).is_ok_and(|m| (m.dev(), m.ino()) == identity))
        .map(|s| s.path)
}
