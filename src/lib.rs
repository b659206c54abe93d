//! kontext: a keyboard-driven terminal studio for fal.ai's FLUX.1 Kontext [pro] multi-image endpoint.
//!
//! Modules depend one way: `model` (the endpoint's schema) ← `fal` (the queue protocol client)
//! ← `runner` (one job from input to files on disk) ← front ends (`cli`, `tui`).
//! `setup` decides whom to talk to (fal with a key, or the built-in `emulator`).
//! tests/architecture.rs checks the direction (docs/ARCHITECTURE.md).

pub mod cli;
pub mod config;
pub mod emulator;
pub mod exit;
pub mod fal;
pub mod history;
pub mod local_file;
pub mod model;
mod process;
pub mod runner;
pub mod sanitize;
pub mod setup;
pub mod timefmt;
pub mod tui;
