//! The states a robot service can be in, and their CSV names.

/// Declares [`RobotActivityState`] from one `Variant => "CSV_NAME"` line per state.
///
/// The order is the index written into records and into the ring's state table; the
/// drainer maps indices back to names through that table, so reordering or appending
/// needs no drainer rebuild.
macro_rules! robot_activity_states {
    ($($(#[$doc:meta])* $variant:ident => $name:ident,)+) => {
        /// What a robot service is doing during a tracked block. The CSV shows
        /// [`RobotActivityState::name`].
        ///
        /// Each state is also an associated constant under its CSV name, which is what
        /// `#[track(ANALYZING_PROTOCOL)]` resolves to.
        ///
        /// ```
        /// use perf_producer::RobotActivityState;
        /// assert_eq!(RobotActivityState::Calibrating.name(), "CALIBRATING");
        /// assert_eq!(RobotActivityState::CALIBRATING, RobotActivityState::Calibrating);
        /// assert_eq!(RobotActivityState::from_name("CALIBRATING"), Some(RobotActivityState::Calibrating));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum RobotActivityState {
            $($(#[$doc])* $variant,)+
        }

        #[allow(non_upper_case_globals)]
        impl RobotActivityState {
            $(
                #[doc = concat!("[`RobotActivityState::", stringify!($variant), "`] under its CSV name.")]
                pub const $name: RobotActivityState = RobotActivityState::$variant;
            )+

            /// Every state, in index order.
            pub const ALL: &'static [RobotActivityState] = &[$(RobotActivityState::$variant,)+];

            /// Every CSV name, in index order: the ring's state table.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name),)+];

            /// The name the CSV shows.
            pub const fn name(self) -> &'static str {
                match self {
                    $(RobotActivityState::$variant => stringify!($name),)+
                }
            }
        }
    };
}

robot_activity_states! {
    /// Analysing a protocol file.
    AnalyzingProtocol => ANALYZING_PROTOCOL,
    /// Serving an analysis from the cache.
    GettingCachedAnalysis => GETTING_CACHED_ANALYSIS,
    /// Running a protocol.
    RunningProtocol => RUNNING_PROTOCOL,
    /// Calibrating.
    Calibrating => CALIBRATING,
    /// Starting up.
    RobotStartingUp => ROBOT_STARTING_UP,
    /// Shutting down.
    RobotShuttingDown => ROBOT_SHUTTING_DOWN,
}

impl RobotActivityState {
    /// Index in the ring's state table (what records carry).
    #[inline]
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The state with this CSV name, if any.
    pub fn from_name(name: &str) -> Option<RobotActivityState> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }
}

impl std::fmt::Display for RobotActivityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_ring_state_names_and_match_indices() {
        assert!(RobotActivityState::NAMES.len() <= perf_ring::MAX_STATES);
        for (i, state) in RobotActivityState::ALL.iter().enumerate() {
            assert_eq!(state.index() as usize, i);
            assert_eq!(RobotActivityState::NAMES[i], state.name());
            assert!(perf_ring::format::valid_state_name(state.name().as_bytes()));
            assert_eq!(RobotActivityState::from_name(state.name()), Some(*state));
        }
        assert_eq!(
            RobotActivityState::NAMES,
            [
                "ANALYZING_PROTOCOL",
                "GETTING_CACHED_ANALYSIS",
                "RUNNING_PROTOCOL",
                "CALIBRATING",
                "ROBOT_STARTING_UP",
                "ROBOT_SHUTTING_DOWN"
            ]
        );
        assert_eq!(RobotActivityState::from_name("calibrating"), None);
    }
}
