//! Cross-crate integration, multi-process stress and crash tests, and the load generator.

pub mod load;
