//! What fal sends back: the model output and queue statuses. Strict where a wrong value would
//! mislead (image URLs, sizes, seed, NSFW flags, prompt), lenient where fal varies (log entries,
//! `timings`, extra fields, which are kept).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The endpoint's output (`images`, `timings`, `seed`, `has_nsfw_concepts`, `prompt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KontextOutput {
    pub images: Vec<OutputImage>,
    /// Shape unpublished (usually `{"inference": secs}`): kept as it came.
    #[serde(default)]
    pub timings: Value,
    #[serde(deserialize_with = "seed_from_number")]
    pub seed: u64,
    pub has_nsfw_concepts: Vec<bool>,
    pub prompt: String,
    /// Fields this client does not know, kept so nothing fal sent is lost.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputImage {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl KontextOutput {
    /// `timings.inference` in seconds when fal reports it.
    pub fn inference_seconds(&self) -> Option<f64> {
        self.timings.get("inference").and_then(Value::as_f64)
    }
    pub fn nsfw(&self, index: usize) -> bool {
        self.has_nsfw_concepts.get(index).copied().unwrap_or(false)
    }
}

/// Seeds above `i64::MAX` occur in fal outputs; a float seed is refused rather than rounded.
fn seed_from_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64().ok_or_else(|| serde::de::Error::custom(format!("seed must be a non-negative integer, got {n}")))
}

/// A queue status as polled or streamed (fal-protocol.md §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub status: StatusKind,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub queue_position: Option<u64>,
    #[serde(default, deserialize_with = "lenient_logs")]
    pub logs: Option<Vec<LogEntry>>,
    #[serde(default)]
    pub metrics: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub status_url: Option<String>,
    #[serde(default)]
    pub cancel_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum StatusKind {
    InQueue,
    InProgress,
    Completed,
    /// A status fal's docs do not define; treated as still running.
    Other(String),
}

impl From<String> for StatusKind {
    fn from(s: String) -> Self {
        match s.as_str() {
            "IN_QUEUE" => StatusKind::InQueue,
            "IN_PROGRESS" => StatusKind::InProgress,
            "COMPLETED" => StatusKind::Completed,
            _ => StatusKind::Other(s),
        }
    }
}

impl From<StatusKind> for String {
    fn from(s: StatusKind) -> Self {
        match s {
            StatusKind::InQueue => "IN_QUEUE".into(),
            StatusKind::InProgress => "IN_PROGRESS".into(),
            StatusKind::Completed => "COMPLETED".into(),
            StatusKind::Other(o) => o,
        }
    }
}

/// One log line. fal has sent `level`/`source` at the top level, under `labels`, or not at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl<'de> Deserialize<'de> for LogEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(LogEntry::from_value(&v))
    }
}

impl LogEntry {
    fn from_value(v: &Value) -> LogEntry {
        let text = |key: &str| {
            v.get(key).or_else(|| v.get("labels").and_then(|l| l.get(key))).and_then(|x| x.as_str().map(str::to_string))
        };
        LogEntry {
            message: match v {
                Value::String(s) => s.clone(),
                _ => text("message").unwrap_or_default(),
            },
            timestamp: text("timestamp"),
            level: text("level"),
            source: text("source"),
        }
    }
}

/// `logs` may be null, absent, or a list whose entries vary in shape; never fail a status on it.
fn lenient_logs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<LogEntry>>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => Some(items.iter().map(LogEntry::from_value).collect()),
        _ => None,
    })
}

/// The answer to a queue submit (fal-protocol.md §1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub request_id: String,
    pub response_url: String,
    pub status_url: String,
    pub cancel_url: String,
    #[serde(default)]
    pub queue_position: Option<u64>,
}
