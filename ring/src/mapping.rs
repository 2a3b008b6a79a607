//! A ring file mapped into this process, and the typed views over it.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use memmap2::MmapRaw;

use crate::core::{Control, RingView, Slot};
use crate::format::{validate, CONTROL_OFFSET, HEADER_SIZE, SLOT_SIZE};
use crate::{RingError, RingInfo};

const _: () = assert!(std::mem::size_of::<Control>() == 3 * 128);
const _: () = assert!(std::mem::align_of::<Control>() == 128);
const _: () = assert!(CONTROL_OFFSET % 128 == 0);
const _: () = assert!(CONTROL_OFFSET + std::mem::size_of::<Control>() <= HEADER_SIZE as usize);
const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_SIZE as usize);
const _: () = assert!(std::mem::align_of::<Slot>() == 8);

/// The mapping of one ring file (read-write, shared).
#[derive(Debug)]
pub(crate) struct Mapped {
    map: MmapRaw,
    capacity: u64,
}

// `Mapped` is Send and Sync because memmap2's `MmapRaw` is (it promises nothing about the
// bytes; we access them only through atomics, or as the creator before anyone else can map
// the file). Checked here so a memmap2 that stopped saying so fails the build.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Mapped>();
};

impl Mapped {
    /// Maps `file`, which must already be exactly `HEADER_SIZE + capacity * SLOT_SIZE`
    /// bytes long (the caller validated it).
    ///
    /// The remaining risk is the file shrinking later: accesses then raise SIGBUS, which
    /// the consumer survives through [`crate::sigbus`] and the producer does not (it owns
    /// its file; only its own user can truncate it).
    pub(crate) fn map(file: &File, path: &Path, capacity: u64) -> Result<Self, RingError> {
        let len = crate::format::file_size(capacity);
        let len = usize::try_from(len).map_err(|_| RingError::BadCapacity { found: capacity })?;
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(file)
            .map_err(|e| RingError::io("cannot map", path, e))?;
        Ok(Mapped { map, capacity })
    }

    pub(crate) fn addr(&self) -> usize {
        self.map.as_mut_ptr() as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The protocol's view of this mapping.
    #[inline]
    pub(crate) fn view(&self) -> RingView<'_> {
        let base = self.map.as_mut_ptr();
        // SAFETY: CONTROL_OFFSET + size_of::<Control>() lies inside the header page, the
        // mapping is page-aligned so the pointer is 128-byte aligned (asserted above), and
        // `Control` is three atomics plus padding, valid for any bit pattern.
        let ctrl: &Control = unsafe { &*(base.wrapping_add(CONTROL_OFFSET) as *const Control) };
        // SAFETY: the mapping is HEADER_SIZE + capacity * SLOT_SIZE bytes, so `capacity`
        // slots start at HEADER_SIZE (8-byte aligned) and end at its end; `Slot` is four
        // atomics, valid for any bit pattern; all access is atomic.
        let slots: &[Slot] = unsafe {
            std::slice::from_raw_parts(
                base.wrapping_add(HEADER_SIZE as usize) as *const Slot,
                self.capacity as usize,
            )
        };
        RingView::new(ctrl, slots)
    }
}

/// Opens an existing ring file read-write and validates a copy of its header.
///
/// Refuses symlinks, FIFOs (opened non-blocking, so one cannot hang us), devices and
/// directories with [`RingError::NotRegularFile`], and any content that is not a valid
/// ring with the matching [`RingError`].
pub(crate) fn open_existing(path: &Path) -> Result<(File, Metadata, RingInfo), RingError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EISDIR) | Some(libc::ENXIO) => RingError::NotRegularFile,
            _ => RingError::io("cannot open", path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| RingError::io("cannot stat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(RingError::NotRegularFile);
    }
    let mut head = vec![0u8; HEADER_SIZE as usize];
    let got = read_full_at(&file, &mut head).map_err(|e| RingError::io("cannot read", path, e))?;
    let info = validate(&head[..got], meta.len())?;
    Ok((file, meta, info))
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
