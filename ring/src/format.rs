//! The on-shm layout, byte by byte (see also `FORMAT.md`), and its validation.
//!
//! Validation works on a *copy* of the header (read with `pread`, never through the
//! mapping), so a writer changing the file afterwards cannot change what was checked.

use bytemuck::{Pod, Zeroable};

use crate::RingError;

/// `b"OTPMRING"` read as a little-endian u64. The same for every format version.
pub const MAGIC: u64 = u64::from_le_bytes(*b"OTPMRING");
/// The only format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Bytes before the first slot: one 4 KiB page.
pub const HEADER_SIZE: u32 = 4096;
/// Bytes per slot: sequence word + the three words of a [`Record`].
pub const SLOT_SIZE: u32 = 32;
/// Largest capacity accepted: 2^22 slots = 128 MiB of slots.
pub const MAX_CAPACITY: u64 = 1 << 22;
/// Number of entries in the state-name table.
pub const MAX_STATES: usize = 64;
/// Bytes per state name (NUL-padded; a name may use all of them).
pub const STATE_NAME_LEN: usize = 32;
/// Bytes for the service name (NUL-padded; at most 63 used, so it is NUL-terminated).
pub const SERVICE_NAME_LEN: usize = 64;
/// Offset of the control block (`tail`, `head`, `dropped`, 128 bytes apart).
pub const CONTROL_OFFSET: usize = 2176;

/// One timed block, as copied out of a slot.
///
/// ```
/// let r = perf_ring::Record { start_ns: 1, duration_ns: 2, state: 0, tid: 7 };
/// assert_eq!(bytemuck::bytes_of(&r).len(), 24);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Record {
    /// Wall-clock start, CLOCK_REALTIME nanoseconds since the epoch.
    pub start_ns: u64,
    /// Duration in nanoseconds (CLOCK_MONOTONIC difference).
    pub duration_ns: u64,
    /// Index into the ring's state-name table. Untrusted: check it against the table.
    pub state: u32,
    /// Kernel thread id of the writer.
    pub tid: u32,
}

const _: () = assert!(std::mem::size_of::<Record>() == 24);
const _: () = assert!(std::mem::size_of::<Record>() + 8 == SLOT_SIZE as usize);

/// The immutable part of the header, exactly as laid out in the file (little-endian).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct HeaderFixed {
    /// [`MAGIC`]; written last, with Release, once everything else is in place.
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// [`SLOT_SIZE`].
    pub slot_size: u32,
    /// Entries used in `states`.
    pub state_count: u32,
    /// Slots; a power of two, at most [`MAX_CAPACITY`].
    pub capacity: u64,
    /// Pid of the process that created the ring (informational: liveness is the lock).
    pub creator_pid: u32,
    /// Reserved, zero.
    pub flags: u32,
    /// Random id, unique per ring; the drainer's checkpoint is keyed by it.
    pub ring_id: u64,
    /// CLOCK_REALTIME ns when the ring was created.
    pub created_ns: u64,
    /// Service name, NUL-padded.
    pub service: [u8; SERVICE_NAME_LEN],
    /// Reserved, zero.
    pub reserved: [u8; 8],
    /// State names, NUL-padded; a record's `state` indexes this table.
    pub states: [[u8; STATE_NAME_LEN]; MAX_STATES],
}

const _: () = assert!(std::mem::size_of::<HeaderFixed>() == CONTROL_OFFSET);

/// What a valid ring file says about itself, copied out and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInfo {
    /// Service that created the ring.
    pub service: String,
    /// Pid of the creating process.
    pub creator_pid: u32,
    /// Random ring id.
    pub ring_id: u64,
    /// Capacity in records.
    pub capacity: u64,
    /// CLOCK_REALTIME ns at creation.
    pub created_ns: u64,
    /// The state-name table, indexed by [`Record::state`].
    pub states: Vec<String>,
}

impl RingInfo {
    /// Total file size a ring of this capacity has.
    pub fn file_size(&self) -> u64 {
        file_size(self.capacity)
    }
}

/// File size of a ring with `capacity` slots.
pub fn file_size(capacity: u64) -> u64 {
    u64::from(HEADER_SIZE) + capacity * u64::from(SLOT_SIZE)
}

/// Checks a state name: `[A-Z][A-Z0-9_]*`, 1 to 32 bytes. Such names need no CSV quoting
/// beyond the quotes every field gets, so a producer cannot inject CSV through them.
pub fn valid_state_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= STATE_NAME_LEN
        && name[0].is_ascii_uppercase()
        && name
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks a service name: 1 to 63 bytes of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn valid_service_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() < SERVICE_NAME_LEN
        && name[0] != b'.'
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The bytes of a NUL-padded field up to the first NUL.
fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Validates a ring file from its first bytes and its total length.
///
/// `head` is whatever could be read from the start of the file (at most
/// [`HEADER_SIZE`] bytes are looked at); `file_len` is the file's size. Any input gives a
/// [`RingInfo`] or a typed error, never a panic.
///
/// ```
/// let err = perf_ring::validate(b"not a ring", 10).unwrap_err();
/// assert!(matches!(err, perf_ring::RingError::Truncated { .. }));
/// ```
pub fn validate(head: &[u8], file_len: u64) -> Result<RingInfo, RingError> {
    let fixed_len = std::mem::size_of::<HeaderFixed>();
    if head.len() < fixed_len || file_len < u64::from(HEADER_SIZE) {
        return Err(RingError::Truncated {
            len: file_len.min(head.len() as u64),
            need: u64::from(HEADER_SIZE),
        });
    }
    let h: HeaderFixed = bytemuck::pod_read_unaligned(&head[..fixed_len]);
    if h.magic != MAGIC {
        return Err(RingError::BadMagic { found: h.magic });
    }
    if h.version != VERSION {
        return Err(RingError::UnsupportedVersion { found: h.version });
    }
    if h.header_size != HEADER_SIZE || h.slot_size != SLOT_SIZE {
        return Err(RingError::BadSizes {
            header_size: h.header_size,
            slot_size: h.slot_size,
        });
    }
    if !h.capacity.is_power_of_two() || h.capacity > MAX_CAPACITY {
        return Err(RingError::BadCapacity { found: h.capacity });
    }
    let expected = file_size(h.capacity);
    if file_len != expected {
        return Err(RingError::SizeMismatch {
            expected,
            found: file_len,
        });
    }
    if h.state_count as usize > MAX_STATES {
        return Err(RingError::BadStateCount {
            found: h.state_count,
        });
    }
    let service = until_nul(&h.service);
    if !valid_service_name(service) {
        return Err(RingError::BadServiceName {
            found: String::from_utf8_lossy(service).into_owned(),
        });
    }
    let mut states = Vec::with_capacity(h.state_count as usize);
    for (index, raw) in h.states[..h.state_count as usize].iter().enumerate() {
        let name = until_nul(raw);
        if !valid_state_name(name) {
            return Err(RingError::BadStateName {
                index,
                found: String::from_utf8_lossy(name).into_owned(),
            });
        }
        // Checked above: ASCII only.
        states.push(String::from_utf8_lossy(name).into_owned());
    }
    Ok(RingInfo {
        service: String::from_utf8_lossy(service).into_owned(),
        creator_pid: h.creator_pid,
        ring_id: h.ring_id,
        capacity: h.capacity,
        created_ns: h.created_ns,
        states,
    })
}

/// Builds the header of a new ring (magic included; the creator stores it last).
#[cfg_attr(perf_ring_loom, allow(dead_code))]
pub(crate) fn build_header(
    service: &str,
    states: &[&str],
    capacity: u64,
    creator_pid: u32,
    ring_id: u64,
    created_ns: u64,
) -> Result<HeaderFixed, RingError> {
    if !valid_service_name(service.as_bytes()) {
        return Err(RingError::BadServiceName {
            found: service.to_owned(),
        });
    }
    if !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
        return Err(RingError::BadCapacity { found: capacity });
    }
    if states.len() > MAX_STATES {
        return Err(RingError::BadStateCount {
            found: u32::try_from(states.len()).unwrap_or(u32::MAX),
        });
    }
    let mut h = HeaderFixed::zeroed();
    h.magic = MAGIC;
    h.version = VERSION;
    h.header_size = HEADER_SIZE;
    h.slot_size = SLOT_SIZE;
    h.state_count = states.len() as u32;
    h.capacity = capacity;
    h.creator_pid = creator_pid;
    h.ring_id = ring_id;
    h.created_ns = created_ns;
    h.service[..service.len()].copy_from_slice(service.as_bytes());
    for (index, name) in states.iter().enumerate() {
        if !valid_state_name(name.as_bytes()) {
            return Err(RingError::BadStateName {
                index,
                found: (*name).to_owned(),
            });
        }
        h.states[index][..name.len()].copy_from_slice(name.as_bytes());
    }
    Ok(h)
}
