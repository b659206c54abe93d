//! The fal queue client. It knows HTTP and fal's protocol; it knows nothing of files, history or
//! terminals.

mod body;
mod client;
mod config;
mod destination;
mod error;
mod rate_gate;
mod retry;
mod sse;
mod transfer;

pub use body::BodyPace;
pub use client::{CancelOutcome, FalClient, FollowMode, RequestHandle, StatusUpdate, SubmitError};
pub use config::{
    DEFAULT_API_URL, DEFAULT_QUEUE_URL, DEFAULT_REST_URL, DEFAULT_RUN_URL, FalConfig, FalKey, KeySource,
    is_loopback_url, key_from_env, parse_base_url, same_origin,
};
pub use destination::{AddressClass, DestinationPolicy, DestinationRefused};
pub use error::{Answerer, ApiError, FalError, FalFieldError, NetworkKind};
pub use rate_gate::RateGate;
pub use retry::{RetryNotice, RetryPolicy};
pub use transfer::Media;
