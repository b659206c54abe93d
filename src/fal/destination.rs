//! Where the client may connect. One policy decides for every URL a server hands us (the
//! submit's `response_url`/`status_url`/`cancel_url`, `upload_url`, image URLs in a result), for
//! every redirect reqwest would follow, and for every address a host name resolves to:
//!
//! * https only; plain http only from this machine to this machine (the emulator);
//! * never another scheme (`file:`, `ftp:`, …);
//! * never a loopback, private, link-local (the cloud metadata service at 169.254.169.254),
//!   multicast, unspecified or broadcast address, unless a configured fal host is one itself.
//!
//! A refused destination is refused before any connection is made. Configured hosts are the
//! user's choice and are not second-guessed. Through a proxy, host names are resolved by the
//! proxy, so only literal addresses in URLs are checked there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

use super::config::FalConfig;

/// The kind of network an address belongs to, as far as where the key and requests may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT), fc00::/7.
    Private,
    /// 169.254/16, fe80::/10: where cloud metadata services answer.
    LinkLocal,
    Multicast,
    Unspecified,
    Broadcast,
}

impl AddressClass {
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // ::ffff:169.254.169.254 is 169.254.169.254.
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> AddressClass {
        let [a, b, ..] = ip.octets();
        if ip.is_loopback() {
            AddressClass::Loopback
        } else if ip.is_unspecified() || a == 0 {
            AddressClass::Unspecified
        } else if ip.is_broadcast() {
            AddressClass::Broadcast
        } else if ip.is_link_local() {
            AddressClass::LinkLocal
        } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
            AddressClass::Private
        } else if ip.is_multicast() {
            AddressClass::Multicast
        } else {
            AddressClass::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> AddressClass {
        if ip.is_loopback() {
            AddressClass::Loopback
        } else if ip.is_unspecified() {
            AddressClass::Unspecified
        } else if ip.is_unicast_link_local() {
            AddressClass::LinkLocal
        } else if ip.is_unique_local() || (ip.segments()[0] & 0xffc0) == 0xfec0 {
            // fec0::/10 (site-local) is deprecated but still private.
            AddressClass::Private
        } else if ip.is_multicast() {
            AddressClass::Multicast
        } else {
            AddressClass::Public
        }
    }

    fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "this machine (loopback)",
            AddressClass::Private => "a private-network address",
            AddressClass::LinkLocal => "a link-local address (where cloud metadata services answer)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Broadcast => "the broadcast address",
        }
    }
}

/// A destination the policy refused; nothing was sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused to connect to {url}: {reason}")]
pub struct DestinationRefused {
    /// The destination without query or credentials (a presigned URL's token stays out of logs).
    pub url: String,
    pub reason: String,
}

impl DestinationRefused {
    fn new(url: &Url, reason: impl Into<String>) -> DestinationRefused {
        DestinationRefused { url: shown(url), reason: reason.into() }
    }

    /// A redirect the HTTP library did not follow because its `Location` is not a web URL.
    pub(crate) fn unfollowed(location: &str) -> DestinationRefused {
        match Url::parse(location) {
            Ok(url) => DestinationRefused::new(&url, format!("the {:?} scheme is never followed", url.scheme())),
            Err(_) => DestinationRefused {
                url: crate::sanitize::strip_controls(location).chars().take(200).collect(),
                reason: "the redirect's target is not a URL kontext follows".into(),
            },
        }
    }
}

/// `scheme://host[:port]/path`, at most 200 characters.
fn shown(url: &Url) -> String {
    let text = match url.host_str() {
        Some(host) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", url.scheme(), url.path())
        }
        None => format!("{}:", url.scheme()),
    };
    text.chars().take(200).collect()
}

/// The policy for one client, derived from its configured fal hosts.
#[derive(Debug, Clone)]
pub struct DestinationPolicy {
    /// Address classes beyond public ones that are allowed because a configured host is one.
    allowed: Vec<AddressClass>,
    /// Configured host names (lowercase) and proxy hosts: their DNS answers are not filtered.
    trusted_names: Vec<String>,
}

impl DestinationPolicy {
    pub fn for_config(config: &FalConfig) -> DestinationPolicy {
        let mut allowed = Vec::new();
        let mut trusted_names = Vec::new();
        for base in config.hosts() {
            match host_class(base) {
                Some(class) => allowed.push(class),
                None => trusted_names.extend(base.host_str().map(normalise_name)),
            }
        }
        trusted_names.extend(proxy_hosts());
        DestinationPolicy { allowed, trusted_names }
    }

    fn allows(&self, class: AddressClass) -> bool {
        class == AddressClass::Public || self.allowed.contains(&class)
    }

    /// Whether a URL a server gave us (or a redirect points to) may be fetched. Names are
    /// checked again, address by address, when they resolve.
    pub fn check(&self, url: &Url) -> Result<(), DestinationRefused> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(DestinationRefused::new(url, format!("the {:?} scheme is never followed", url.scheme())));
        }
        if url.host_str().is_none() {
            return Err(DestinationRefused::new(url, "it has no host"));
        }
        let class = host_class(url);
        if let Some(c) = class.filter(|c| !self.allows(*c)) {
            return Err(DestinationRefused::new(url, format!("it is {}, and no configured fal host is", c.describe())));
        }
        if url.scheme() == "http" && class != Some(AddressClass::Loopback) {
            return Err(DestinationRefused::new(
                url,
                "plain http is allowed only from this machine to this machine; fal's URLs are https",
            ));
        }
        Ok(())
    }

    /// [`DestinationPolicy::check`] for a redirect: plain http also needs a loopback origin.
    pub fn check_redirect(&self, from: Option<&Url>, to: &Url) -> Result<(), DestinationRefused> {
        self.check(to)?;
        if to.scheme() == "http" && !from.is_some_and(|f| host_class(f) == Some(AddressClass::Loopback)) {
            return Err(DestinationRefused::new(to, "a redirect from another machine to plain http is never followed"));
        }
        Ok(())
    }

    /// Keeps the resolved addresses of `name` the policy allows; refuses when none is left.
    pub fn filter_resolved(
        &self,
        name: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, DestinationRefused> {
        let name = normalise_name(name);
        let all: Vec<SocketAddr> = addrs.into_iter().collect();
        if self.trusted_names.contains(&name) {
            return Ok(all);
        }
        let kept: Vec<SocketAddr> = all.iter().copied().filter(|a| self.allows(AddressClass::of(a.ip()))).collect();
        match (kept.is_empty(), all.first()) {
            (false, _) => Ok(kept),
            (true, Some(first)) => Err(DestinationRefused {
                url: name.clone(),
                reason: format!(
                    "{name} resolves to {}, and no configured fal host is",
                    AddressClass::of(first.ip()).describe()
                ),
            }),
            (true, None) => Err(DestinationRefused { url: name.clone(), reason: format!("{name} has no address") }),
        }
    }
}

fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The class of a URL's host when it is known without DNS: a literal address or `localhost`.
fn host_class(url: &Url) -> Option<AddressClass> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(AddressClass::of(IpAddr::V4(ip))),
        url::Host::Ipv6(ip) => Some(AddressClass::of(IpAddr::V6(ip))),
        url::Host::Domain(d) => {
            let d = normalise_name(d);
            (d == "localhost" || d.ends_with(".localhost")).then_some(AddressClass::Loopback)
        }
    }
}

/// Hosts of the proxies reqwest takes from the environment: they are the user's choice.
fn proxy_hosts() -> Vec<String> {
    ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .filter_map(|v| Url::parse(&v).ok().or_else(|| Url::parse(&format!("http://{v}")).ok()))
        .filter_map(|u| u.host_str().map(normalise_name))
        .collect()
}

/// reqwest's redirect policy: at most 10 hops, each allowed by the destination policy.
pub fn redirect_policy(policy: Arc<DestinationPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > 10 {
            return attempt.error("more than 10 redirects");
        }
        match policy.check_redirect(attempt.previous().last(), attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

/// A resolver that asks the system (as reqwest's default does) and drops the answers the policy
/// refuses, so a public-looking name cannot lead to 169.254.169.254. Names under `.invalid`
/// never resolve (RFC 6761 §6.4) and are not looked up.
pub struct GuardedResolver {
    pub policy: Arc<DestinationPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let lower = normalise_name(&host);
            if lower == "invalid" || lower.ends_with(".invalid") {
                return Err(format!("{host} does not exist (.invalid names never resolve)").into());
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = policy.filter_resolved(&host, found)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Finds a refusal in an error's source chain (reqwest wraps what the policy returned).
pub(crate) fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<DestinationRefused> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<DestinationRefused>() {
            return Some(r.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn fal() -> DestinationPolicy {
        DestinationPolicy::for_config(&FalConfig::production(None))
    }

    fn emulator() -> DestinationPolicy {
        DestinationPolicy::for_config(&FalConfig::single_host(u("http://127.0.0.1:8080"), None))
    }

    #[test]
    fn classes_of_addresses() {
        let c = |s: &str| AddressClass::of(s.parse().unwrap());
        assert_eq!(c("169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(c("::ffff:169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        for p in ["10.0.0.1", "172.16.3.4", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd00::1", "fc00::1"] {
            assert_eq!(c(p), AddressClass::Private, "{p}");
        }
        assert_eq!(c("127.0.0.2"), AddressClass::Loopback);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(c("ff02::1"), AddressClass::Multicast);
        assert_eq!(c("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(c("::"), AddressClass::Unspecified);
        assert_eq!(c("255.255.255.255"), AddressClass::Broadcast);
        for p in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1"] {
            assert_eq!(c(p), AddressClass::Public, "{p}");
        }
    }

    #[test]
    fn on_fal_only_public_https_is_allowed() {
        let p = fal();
        assert!(p.check(&u("https://v3.fal.media/files/a.png")).is_ok());
        assert!(p.check(&u("https://8.8.8.8/x")).is_ok());
        for bad in [
            "http://v3.fal.media/files/a.png",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fe80::1]/",
            "https://10.0.0.1/",
            "https://192.168.0.1/",
            "https://127.0.0.1/",
            "https://localhost/",
            "https://0x7f.1/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://2852039166/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://169.254.169.254./",
            "https://LOCALHOST./",
            "https://app.localhost/",
            "https://224.0.0.1/",
            "https://0.0.0.0/",
            "file:///etc/passwd",
            "ftp://v3.fal.media/a",
        ] {
            assert!(p.check(&u(bad)).is_err(), "{bad} must be refused");
        }
        let err = p.check(&u("https://169.254.169.254/latest/meta-data/?token=x")).unwrap_err();
        assert!(err.to_string().contains("link-local"), "{err}");
        assert!(!err.to_string().contains("token"), "{err}");
    }

    #[test]
    fn on_the_emulator_loopback_http_is_allowed_but_nothing_else_local() {
        let p = emulator();
        assert!(p.check(&u("http://127.0.0.2:9/files/a.png")).is_ok());
        assert!(p.check(&u("http://localhost:9/")).is_ok());
        assert!(p.check(&u("http://[::1]:9/")).is_ok());
        assert!(p.check(&u("https://v3.fal.media/a")).is_ok());
        assert!(p.check(&u("http://169.254.169.254/")).is_err());
        assert!(p.check(&u("https://169.254.169.254/")).is_err());
        assert!(p.check(&u("https://10.1.1.1/")).is_err());
        assert!(p.check(&u("file:///etc/passwd")).is_err());
        // A remote server cannot send us to plain http on this machine.
        let cdn = u("https://v3.fal.media/a");
        assert!(p.check_redirect(Some(&cdn), &u("http://127.0.0.1:9/")).is_err());
        assert!(p.check_redirect(Some(&u("http://127.0.0.1:8080/")), &u("http://127.0.0.2:9/")).is_ok());
    }

    #[test]
    fn a_configured_private_host_allows_its_class() {
        let cfg = FalConfig::single_host(u("https://10.0.0.5:8443"), None);
        let p = DestinationPolicy::for_config(&cfg);
        assert!(p.check(&u("https://10.0.0.7/")).is_ok());
        assert!(p.check(&u("https://169.254.169.254/")).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_local_answers_for_other_names_and_never_looks_up_invalid() {
        use reqwest::dns::Resolve;
        let resolve = |policy: DestinationPolicy, name: &str| {
            let resolver = GuardedResolver { policy: Arc::new(policy) };
            resolver.resolve(name.parse().unwrap())
        };
        // `localhost` comes from the hosts file (no network): loopback, refused on fal.
        let err = resolve(fal(), "localhost").await.err().expect("refused");
        assert!(refusal_in(err.as_ref()).is_some_and(|r| r.reason.contains("loopback")), "{err}");
        // On the emulator loopback is where fal is.
        let found: Vec<SocketAddr> = resolve(emulator(), "localhost").await.expect("resolves").collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty(), "{found:?}");
        let err = resolve(fal(), "queue.kontext.invalid").await.err().expect("never resolves");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn resolved_addresses_are_filtered_except_for_configured_names() {
        let p = fal();
        let meta: SocketAddr = "169.254.169.254:0".parse().unwrap();
        let public: SocketAddr = "8.8.8.8:0".parse().unwrap();
        assert!(p.filter_resolved("evil.example", [meta]).is_err());
        assert_eq!(p.filter_resolved("mixed.example", [meta, public]).unwrap(), vec![public]);
        assert_eq!(p.filter_resolved("Queue.Fal.Run.", [meta]).unwrap(), vec![meta], "configured names are trusted");
    }
}
