//! A request's state in the history, as stored and as people type it.

use serde::{Deserialize, Serialize};

/// Where a request is in its life. `Completed`, `Failed`, `Cancelled` and `SubmitAmbiguous` are
/// final; the others are resumed after a crash (see docs/HISTORY.md for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Recorded; not yet accepted by fal (inputs uploading, or the submit in flight).
    Pending,
    Queued,
    InProgress,
    /// Every output is stored and saved.
    Completed,
    Failed,
    CancelRequested,
    Cancelled,
    /// The submit may or may not have reached fal; never resubmitted automatically.
    SubmitAmbiguous,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Pending,
        JobState::Queued,
        JobState::InProgress,
        JobState::Completed,
        JobState::Failed,
        JobState::CancelRequested,
        JobState::Cancelled,
        JobState::SubmitAmbiguous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Queued => "queued",
            JobState::InProgress => "in_progress",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::CancelRequested => "cancel_requested",
            JobState::Cancelled => "cancelled",
            JobState::SubmitAmbiguous => "submit_ambiguous",
        }
    }

    /// Accepts the stored names and a few spellings people type (`in-progress`, `running`).
    pub fn parse(s: &str) -> Option<JobState> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        match s.as_str() {
            "running" => Some(JobState::InProgress),
            "ambiguous" => Some(JobState::SubmitAmbiguous),
            "canceled" => Some(JobState::Cancelled),
            _ => Self::ALL.into_iter().find(|st| st.as_str() == s),
        }
    }

    /// Nothing more will happen to a request in a final state.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Cancelled | JobState::SubmitAmbiguous)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_and_finality() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("in-progress"), Some(JobState::InProgress));
        assert_eq!(JobState::parse("nope"), None);
        assert!(JobState::SubmitAmbiguous.is_final() && !JobState::CancelRequested.is_final());
    }
}
