//! Exit codes of `kontext run` and the studio (documented in README.md): a leaf, so every front
//! end can use them without using another.

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
pub const INVALID_INPUT: u8 = 2;
pub const FAL_ERROR: u8 = 3;
pub const NETWORK: u8 = 4;
/// The images were written, but the history could not record every step (a full disk):
/// `kontext resume` records it once there is room. Not 0, so a script notices.
pub const UNRECORDED: u8 = 5;
pub const INTERRUPTED: u8 = 130;
