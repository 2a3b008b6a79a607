//! Cross-crate integration, multi-process stress and crash tests, and the load generator.

pub mod bins;
pub mod context;
pub mod hostile;
pub mod load;
pub mod prometheus;
pub mod stress;
