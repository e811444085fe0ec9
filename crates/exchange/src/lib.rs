//! Moving blocks between peers. Everything here is sans-IO: state machines
//! fed with messages and `now`, read with `poll_*`; the daemon moves the
//! bytes.

pub mod bitswap;
pub mod schedule;
pub mod sync;
