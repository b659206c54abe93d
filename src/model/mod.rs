//! The endpoints' schemas (as data, see `schema`), typed input with validation, what a request
//! costs, output and queue-status parsing.

mod catalog;
pub mod cost;
mod endpoint;
mod input;
mod output;
pub mod schema;
pub mod sweep;
mod validation;

pub use catalog::Catalog;
pub use endpoint::{DEFAULT_ENDPOINT, Endpoint, MAX_INPUT_IMAGES};
pub use input::*;
pub use output::*;
pub use schema::{EndpointSchema, FieldKind, FieldSpec, ImageInput, PriceUnit};
pub use validation::{Field, FieldError, ValidationErrors};
