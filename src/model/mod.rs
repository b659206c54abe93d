//! The endpoint's schema: typed input with validation, output and queue-status parsing.

mod endpoint;
mod input;
mod output;
mod validation;

pub use endpoint::{DEFAULT_ENDPOINT, Endpoint, MAX_INPUT_IMAGES};
pub use input::*;
pub use output::*;
pub use validation::{Field, FieldError, ValidationErrors};
