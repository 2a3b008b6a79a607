//! The system resource tracker daemon: CPU and memory of selected processes from /proc to CSV.
