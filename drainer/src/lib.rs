//! The perf-drainer daemon: rings in /dev/shm to CSV files, exactly once.
