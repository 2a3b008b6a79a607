//! The library robot services link to time blocks of code into their ring.
