//! kontext: a keyboard-driven terminal studio for fal.ai's FLUX.1 Kontext [pro] multi-image endpoint.
//!
//! Modules depend one way: `model` (the endpoint's schema) ← `fal` (the queue protocol client)
//! ← `runner` (one job from input to files on disk) ← front ends (`cli`, later the TUI).
//! `emulator` is a stand-alone fal look-alike used as the offline default and the test double.

pub mod emulator;
pub mod fal;
pub mod model;
pub mod sanitize;
