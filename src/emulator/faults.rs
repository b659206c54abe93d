//! Fault injection: `KIND[@ROUTE]:AMOUNT[=URL]` rules, comma separated (see docs/EMULATOR.md).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

use super::Route;

/// What a fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 `{"detail":"Rate limit exceeded"}` + `Retry-After: 1`.
    RateLimit,
    /// 408 request timeout (retried by the Python client).
    Status408,
    /// 409 conflict (retried by the Python client).
    Status409,
    /// nginx-style ingress 502, HTML body, no `x-fal-request-id` (retryable).
    Ingress502,
    /// nginx-style ingress 504, HTML body, no `x-fal-request-id` (retryable).
    Ingress504,
    /// fal-generated 503 with `x-fal-request-id` and `runner_connection_error` (not retryable).
    Fal503,
    /// 504 with `X-Fal-Request-Timeout-Type: user` (never retried).
    UserTimeout504,
    /// fal 500 `internal_error` (flat format).
    Internal500,
    /// The request is processed but the connection breaks before the response.
    Reset,
    /// The request is accepted but never answered.
    Hang,
    /// The status stream closes after its first event.
    DropStream,
    /// The model run fails (`runner_disconnected`).
    Fail,
    /// Added latency before answering.
    Slow,
    /// The status stream sends `data: xxxx…` without ever ending the line.
    NoNewline,
    /// The answer's body arrives a byte every 20 ms.
    Trickle,
    /// `Content-Length` promises the whole body, half is sent, then the connection closes.
    ShortBody,
    /// The result answers 400 "still in progress" although the status said COMPLETED.
    NotReady,
    /// A 200 result whose JSON is cut in half (with a matching `Content-Length`).
    Truncated,
    /// A 200 result that is an HTML page, not JSON.
    NotJson,
    /// A 200 announcing a 1 GiB body (`Content-Length`), streaming zeros.
    Oversize,
    /// A 200 streaming zeros without `Content-Length` (up to 1 GiB).
    OversizeChunked,
    /// The result lists two more images than were asked for.
    ExtraImages,
    /// The request runs, but every log line and the prompt fal echoes carry [`HOSTILE_TEXT`].
    HostileText,
    /// 302 with `Location:` the rule's URL (`redirect@files:#1=http://169.254.169.254/`).
    Redirect,
}

/// What a hostile server slips into its text: an OSC 52 clipboard write, a screen clear, a
/// doubled ESC before an OSC (a naive stripper prints its payload), a C1 CSI and a bidi
/// override. A terminal-safe client shows only ` desrever`.
pub const HOSTILE_TEXT: &str = " \u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{1b}\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}desrever";

const KINDS: &[(&str, FaultKind)] = &[
    ("429", FaultKind::RateLimit),
    ("408", FaultKind::Status408),
    ("409", FaultKind::Status409),
    ("502", FaultKind::Ingress502),
    ("503", FaultKind::Fal503),
    ("504", FaultKind::Ingress504),
    ("504-user", FaultKind::UserTimeout504),
    ("500", FaultKind::Internal500),
    ("reset", FaultKind::Reset),
    ("hang", FaultKind::Hang),
    ("drop-stream", FaultKind::DropStream),
    ("fail", FaultKind::Fail),
    ("slow", FaultKind::Slow),
    ("no-newline", FaultKind::NoNewline),
    ("trickle", FaultKind::Trickle),
    ("short-body", FaultKind::ShortBody),
    ("not-ready", FaultKind::NotReady),
    ("truncated", FaultKind::Truncated),
    ("not-json", FaultKind::NotJson),
    ("oversize", FaultKind::Oversize),
    ("oversize-chunked", FaultKind::OversizeChunked),
    ("extra-images", FaultKind::ExtraImages),
    ("hostile-text", FaultKind::HostileText),
    ("redirect", FaultKind::Redirect),
];

/// Route filter of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultRoute {
    Submit,
    Status,
    Stream,
    Result,
    Cancel,
    Upload,
    Files,
    Run,
}

const ROUTES: &[(&str, FaultRoute)] = &[
    ("submit", FaultRoute::Submit),
    ("status", FaultRoute::Status),
    ("stream", FaultRoute::Stream),
    ("result", FaultRoute::Result),
    ("cancel", FaultRoute::Cancel),
    ("upload", FaultRoute::Upload),
    ("files", FaultRoute::Files),
    ("run", FaultRoute::Run),
];

impl FaultRoute {
    fn matches(self, route: Route) -> bool {
        matches!(
            (self, route),
            (FaultRoute::Submit, Route::Submit)
                | (FaultRoute::Status, Route::Status)
                | (FaultRoute::Stream, Route::StatusStream)
                | (FaultRoute::Result, Route::Result)
                | (FaultRoute::Cancel, Route::Cancel)
                | (FaultRoute::Run, Route::Run)
                | (FaultRoute::Files, Route::FileGet)
                | (
                    FaultRoute::Upload,
                    Route::StorageInitiate | Route::StorageToken | Route::CdnUpload | Route::UploadPut
                )
        )
    }
}

/// How often a rule fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Fires with this probability (0..=1) on each matching request.
    Probability(f64),
    /// Fires on the first N matching requests.
    Count(u64),
    /// For `slow`: the added latency (always applies).
    Delay(Duration),
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub kind: FaultKind,
    pub route: Option<FaultRoute>,
    pub amount: Amount,
    /// For `redirect`: where to (the `=URL` part).
    pub location: Option<String>,
}

/// A parsed fault specification; `Default` injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub rules: Vec<FaultRule>,
}

impl FaultSpec {
    /// True when no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn kind_name(k: FaultKind) -> &'static str {
    KINDS.iter().find(|(_, v)| *v == k).map(|(n, _)| *n).unwrap_or("?")
}

fn route_name(r: FaultRoute) -> &'static str {
    ROUTES.iter().find(|(_, v)| *v == r).map(|(n, _)| *n).unwrap_or("?")
}

fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) && ms > 0 { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", kind_name(self.kind))?;
        if let Some(r) = self.route {
            write!(f, "@{}", route_name(r))?;
        }
        match self.amount {
            Amount::Probability(p) => write!(f, ":{p}"),
            Amount::Count(n) => write!(f, ":#{n}"),
            Amount::Delay(d) => write!(f, ":{}", fmt_duration(d)),
        }?;
        match &self.location {
            Some(l) => write!(f, "={l}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return write!(f, "none");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Why a fault spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultSpecError(String);

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 || v * mul > 86_400.0 {
        return None;
    }
    Some(Duration::from_secs_f64(v * mul))
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(FaultSpec::default());
        }
        let kinds: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
        let routes: Vec<&str> = ROUTES.iter().map(|(n, _)| *n).collect();
        let mut rules = Vec::new();
        for raw in s.split(',') {
            let rule = raw.trim();
            if rule.is_empty() {
                continue;
            }
            // `=URL` comes last, so the URL's own ':' and '@' do not confuse the rest.
            let (rule_head, location) = match rule.split_once('=') {
                Some((h, l)) => (h.trim_end(), Some(l.trim().to_string())),
                None => (rule, None),
            };
            let (head, amount) = rule_head.rsplit_once(':').ok_or_else(|| {
                FaultSpecError(format!(
                    "fault rule \"{rule}\" has no amount; expected KIND[@ROUTE]:AMOUNT[=URL], e.g. \"429:0.2\", \"502@submit:#2\", \"slow:500ms\" or \"redirect@files:#1=URL\""
                ))
            })?;
            let (kind_s, route_s) = match head.split_once('@') {
                Some((k, r)) => (k.trim(), Some(r.trim())),
                None => (head.trim(), None),
            };
            let kind =
                KINDS.iter().find(|(n, _)| n.eq_ignore_ascii_case(kind_s)).map(|(_, k)| *k).ok_or_else(|| {
                    FaultSpecError(format!(
                        "unknown fault kind \"{kind_s}\" in \"{rule}\"; expected one of {}",
                        kinds.join(", ")
                    ))
                })?;
            let route = match route_s {
                None => None,
                Some(r) => {
                    Some(ROUTES.iter().find(|(n, _)| n.eq_ignore_ascii_case(r)).map(|(_, v)| *v).ok_or_else(|| {
                        FaultSpecError(format!(
                            "unknown fault route \"{r}\" in \"{rule}\"; expected one of {}",
                            routes.join(", ")
                        ))
                    })?)
                }
            };
            let amount_s = amount.trim();
            let amount = if kind == FaultKind::Slow {
                Amount::Delay(parse_duration(amount_s).ok_or_else(|| {
                    FaultSpecError(format!(
                        "invalid duration \"{amount_s}\" in \"{rule}\"; expected e.g. \"500ms\" or \"2s\""
                    ))
                })?)
            } else if let Some(n) = amount_s.strip_prefix('#') {
                Amount::Count(n.trim().parse().map_err(|_| {
                    FaultSpecError(format!(
                        "invalid count \"{amount_s}\" in \"{rule}\"; expected \"#N\" with N a whole number"
                    ))
                })?)
            } else {
                let p: f64 = amount_s.parse().map_err(|_| {
                    FaultSpecError(format!(
                        "invalid amount \"{amount_s}\" in \"{rule}\"; expected a probability between 0 and 1 (\"0.2\") or a count (\"#2\")"
                    ))
                })?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(FaultSpecError(format!("probability {amount_s} in \"{rule}\" is outside 0..1")));
                }
                Amount::Probability(p)
            };
            if matches!(kind, FaultKind::DropStream | FaultKind::NoNewline)
                && route.is_some_and(|r| r != FaultRoute::Stream)
            {
                return Err(FaultSpecError(format!(
                    "\"{kind_s}\" only applies to the stream route, not in \"{rule}\""
                )));
            }
            match (kind, &location) {
                (FaultKind::Redirect, None) => {
                    return Err(FaultSpecError(format!(
                        "\"redirect\" needs a target in \"{rule}\", e.g. \"redirect@files:#1=http://169.254.169.254/\""
                    )));
                }
                (FaultKind::Redirect, Some(l)) if l.is_empty() || l.contains(char::is_whitespace) => {
                    return Err(FaultSpecError(format!("invalid redirect target in \"{rule}\"")));
                }
                (FaultKind::Redirect, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(FaultSpecError(format!("only \"redirect\" takes \"=URL\", not in \"{rule}\"")));
                }
            }
            rules.push(FaultRule { kind, route, amount, location });
        }
        Ok(FaultSpec { rules })
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decision {
    pub delay: Duration,
    pub kind: Option<FaultKind>,
    /// For `redirect`: the `Location`.
    pub location: Option<String>,
}

/// Mutable state: per-rule match counters and a seeded RNG, so runs are reproducible.
pub(crate) struct FaultState {
    spec: FaultSpec,
    counters: Vec<u64>,
    rng: rand::rngs::StdRng,
}

impl FaultState {
    pub(crate) fn new(spec: FaultSpec, seed: u64) -> Self {
        use rand::SeedableRng;
        let n = spec.rules.len();
        FaultState { spec, counters: vec![0; n], rng: rand::rngs::StdRng::seed_from_u64(seed) }
    }

    /// Which routes a rule without `@ROUTE` applies to.
    fn default_applies(kind: FaultKind, route: Route) -> bool {
        match kind {
            FaultKind::DropStream => route == Route::StatusStream,
            // A model failure only makes sense where a model runs.
            FaultKind::Fail => matches!(route, Route::Submit | Route::Run),
            FaultKind::NoNewline => route == Route::StatusStream,
            // Faults of the result; `@ROUTE` may aim the body faults elsewhere.
            FaultKind::NotReady | FaultKind::Truncated | FaultKind::NotJson | FaultKind::ExtraImages => {
                route == Route::Result
            }
            // The text comes from the job, marked when it is submitted.
            FaultKind::HostileText => route == Route::Submit,
            _ => route != Route::Other,
        }
    }

    /// Evaluates the rules in order: every firing `slow` adds latency, the first other firing
    /// rule decides the fault; later rules do not see (or count) that request.
    pub(crate) fn decide(&mut self, route: Route) -> Decision {
        let mut d = Decision::default();
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let applies = match rule.route {
                Some(r) => r.matches(route),
                None => Self::default_applies(rule.kind, route),
            };
            if !applies {
                continue;
            }
            // `fail` on a non-model route and `drop-stream` elsewhere are meaningless.
            if rule.kind == FaultKind::Fail && !matches!(route, Route::Submit | Route::Run) {
                continue;
            }
            if matches!(rule.kind, FaultKind::DropStream | FaultKind::NoNewline) && route != Route::StatusStream {
                continue;
            }
            let fires = match rule.amount {
                Amount::Delay(_) => true,
                Amount::Count(n) => {
                    self.counters[i] += 1;
                    self.counters[i] <= n
                }
                Amount::Probability(p) => self.rng.random::<f64>() < p,
            };
            if !fires {
                continue;
            }
            if rule.kind == FaultKind::Slow {
                if let Amount::Delay(dur) = rule.amount {
                    d.delay += dur;
                }
                continue;
            }
            d.kind = Some(rule.kind);
            d.location = rule.location.clone();
            break;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let s: FaultSpec = "429:0.2, 502@submit:#2,slow@status:2s,slow:500ms,504-user:1".parse().unwrap();
        assert_eq!(s.rules.len(), 5);
        assert_eq!(s.to_string(), "429:0.2,502@submit:#2,slow@status:2s,slow:500ms,504-user:1");
        assert_eq!("".parse::<FaultSpec>().unwrap(), FaultSpec::default());
    }

    #[test]
    fn errors_are_clear() {
        let e = "4299:0.2".parse::<FaultSpec>().unwrap_err().to_string();
        assert!(e.starts_with("unknown fault kind \"4299\" in \"4299:0.2\"; expected one of 429"));
        assert!("429@nope:1".parse::<FaultSpec>().is_err());
        assert!("429:1.5".parse::<FaultSpec>().is_err());
        assert!("slow:fast".parse::<FaultSpec>().is_err());
        assert!("429".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn body_faults_parse_and_aim_at_their_routes() {
        let s: FaultSpec =
            "no-newline:1,not-ready:#3,truncated:#1,not-json:#1,extra-images:1,trickle@files:#1,short-body@status:#1,oversize@result:#1,oversize-chunked@status:#1"
                .parse()
                .unwrap();
        assert_eq!(s.rules.len(), 9);
        assert_eq!(s.to_string().parse::<FaultSpec>().unwrap(), s);
        assert!("no-newline@result:1".parse::<FaultSpec>().is_err());
        let mut st = FaultState::new("not-ready:#1,no-newline:#1".parse().unwrap(), 1);
        assert_eq!(st.decide(Route::Status).kind, None);
        assert_eq!(st.decide(Route::Result).kind, Some(FaultKind::NotReady));
        assert_eq!(st.decide(Route::StatusStream).kind, Some(FaultKind::NoNewline));
        assert_eq!(st.decide(Route::Result).kind, None);
    }

    #[test]
    fn redirect_takes_a_url_last() {
        let s: FaultSpec = "redirect@files:#1=http://169.254.169.254:80/latest/meta-data/?a=b,429:0.5".parse().unwrap();
        assert_eq!(s.rules[0].kind, FaultKind::Redirect);
        assert_eq!(s.rules[0].route, Some(FaultRoute::Files));
        assert_eq!(s.rules[0].amount, Amount::Count(1));
        assert_eq!(s.rules[0].location.as_deref(), Some("http://169.254.169.254:80/latest/meta-data/?a=b"));
        assert_eq!(s.to_string(), "redirect@files:#1=http://169.254.169.254:80/latest/meta-data/?a=b,429:0.5");
        let again: FaultSpec = s.to_string().parse().unwrap();
        assert_eq!(again, s);
        assert!("redirect@result:1".parse::<FaultSpec>().unwrap_err().to_string().contains("needs a target"));
        assert!("429:1=http://x".parse::<FaultSpec>().unwrap_err().to_string().contains("only \"redirect\""));
        let mut st = FaultState::new("redirect@result:#1=file:///etc/passwd".parse().unwrap(), 1);
        assert_eq!(st.decide(Route::Status).kind, None);
        let d = st.decide(Route::Result);
        assert_eq!((d.kind, d.location.as_deref()), (Some(FaultKind::Redirect), Some("file:///etc/passwd")));
    }

    #[test]
    fn counts_fire_first_n() {
        let mut st = FaultState::new("500@status:#2".parse().unwrap(), 1);
        assert_eq!(st.decide(Route::Submit).kind, None);
        assert_eq!(st.decide(Route::Status).kind, Some(FaultKind::Internal500));
        assert_eq!(st.decide(Route::Status).kind, Some(FaultKind::Internal500));
        assert_eq!(st.decide(Route::Status).kind, None);
    }
}
