//! A faithful local emulator of fal's queue, run and storage API (see docs/EMULATOR.md).
