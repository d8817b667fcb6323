//! The refresh settings a pod asks for (`refresh-interval`, `refresh-signal`, `refresh-url`),
//! parsed the same way by the webhook (at admission) and by `injector refresh` (its flags).

use std::fmt;
use std::time::Duration;

/// Longest interval accepted: a day. Values rotated less often than that are read at start.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// The webhook's default for `--refresh-min-interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// The kernel keeps at most 15 bytes of a process name (`TASK_COMM_LEN` less its NUL).
pub const MAX_PROCESS_NAME_BYTES: usize = 15;
/// Longest `refresh-url` accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// How often the sidecar re-reads the objects: a positive whole number and one unit (`s`, `m`,
/// `h`), as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    count: u32,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Minutes,
    Hours,
}

impl Unit {
    fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3600,
        }
    }

    fn letter(self) -> char {
        match self {
            Self::Seconds => 's',
            Self::Minutes => 'm',
            Self::Hours => 'h',
        }
    }
}

impl Interval {
    /// `90s`, `5m`, `1h`: at least one second, at most [`MAX_INTERVAL`]. The webhook's lower
    /// bound is checked apart ([`Interval::at_least`]), so the injector can run shorter ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "write a positive whole number and one unit s, m or h, such as 90s, 5m or 1h";
        let Some(last) = text.chars().last() else {
            return Err(format!("the interval is empty: {hint}"));
        };
        let unit = match last {
            's' => Unit::Seconds,
            'm' => Unit::Minutes,
            'h' => Unit::Hours,
            _ => return Err(format!("{:?} has no unit: {hint}", shown(text))),
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{:?} is not an interval: {hint}", shown(text)));
        }
        let count: u32 = digits
            .parse()
            .map_err(|_| format!("{:?} is not an interval: {hint}", shown(text)))?;
        if count == 0 {
            return Err(format!("{text:?} is zero: {hint}"));
        }
        let interval = Self { count, unit };
        if interval.duration() > MAX_INTERVAL {
            return Err(format!(
                "{text} is longer than the longest interval, 24h: values that change less often \
                 than daily are read when the pod starts; remove the annotation or write at most 24h"
            ));
        }
        Ok(interval)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.count) * self.unit.seconds())
    }

    /// `Err` naming the minimum when the interval is shorter than `min`.
    pub fn at_least(&self, min: Duration) -> Result<(), String> {
        if self.duration() < min {
            return Err(format!(
                "{self} is shorter than this cluster's minimum, {}: write at least that (every \
                 cycle calls AWS for every object of every replica)",
                human(min)
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.letter())
    }
}

/// A duration as the annotation would write it (`30s`, `5m`, `1h`), for messages.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The signals `refresh-signal` may send. Their numbers are the same on x86_64 and arm64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalName {
    Hup,
    Int,
    Quit,
    Kill,
    Usr1,
    Usr2,
    Alrm,
    Term,
    Winch,
}

const SIGNALS: &[(SignalName, &str, i32)] = &[
    (SignalName::Hup, "SIGHUP", 1),
    (SignalName::Int, "SIGINT", 2),
    (SignalName::Quit, "SIGQUIT", 3),
    (SignalName::Kill, "SIGKILL", 9),
    (SignalName::Usr1, "SIGUSR1", 10),
    (SignalName::Usr2, "SIGUSR2", 12),
    (SignalName::Alrm, "SIGALRM", 14),
    (SignalName::Term, "SIGTERM", 15),
    (SignalName::Winch, "SIGWINCH", 28),
];

impl SignalName {
    pub fn name(self) -> &'static str {
        SIGNALS
            .iter()
            .find(|(s, ..)| *s == self)
            .map_or("", |e| e.1)
    }

    /// The signal's number for `kill(2)`.
    pub fn number(self) -> i32 {
        SIGNALS.iter().find(|(s, ..)| *s == self).map_or(0, |e| e.2)
    }

    /// Signals that end the process, so that the kubelet restarts the container.
    pub fn is_restart(self) -> bool {
        matches!(self, Self::Term | Self::Int | Self::Kill)
    }
}

/// `refresh-signal`: which signal goes to which processes (by the kernel's process name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub signal: SignalName,
    pub process: String,
}

impl Signal {
    /// `SIGNAL PROCESS`, such as `SIGHUP nginx`: one of the known signals (with its `SIG`
    /// prefix), one space, and a process name of at most 15 bytes as the kernel keeps it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let known: Vec<&str> = SIGNALS.iter().map(|e| e.1).collect();
        let hint = format!(
            "write a signal and a process name, such as \"SIGHUP nginx\" (signals: {})",
            known.join(", ")
        );
        let mut words = text.split(' ');
        let (Some(signal), Some(process), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "{:?} is not a signal and a process: {hint}",
                shown(text)
            ));
        };
        let Some(&(signal, ..)) = SIGNALS.iter().find(|e| e.1 == signal) else {
            return Err(format!("{:?} is not a known signal: {hint}", shown(signal)));
        };
        check_process_name(process)?;
        Ok(Self {
            signal,
            process: process.to_owned(),
        })
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.signal.name(), self.process)
    }
}

fn check_process_name(process: &str) -> Result<(), String> {
    if process.is_empty() {
        return Err("the process name is empty: write the name `ps -o comm` shows".to_owned());
    }
    if !process.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(format!(
            "process name {:?} may hold only printable ASCII without spaces or '/': write the \
             name `ps -o comm` shows, not a path",
            shown(process)
        ));
    }
    if process.len() > MAX_PROCESS_NAME_BYTES {
        return Err(format!(
            "process name {process:?} is longer than the kernel keeps ({MAX_PROCESS_NAME_BYTES} \
             bytes): write its first {MAX_PROCESS_NAME_BYTES} characters, as `ps -o comm` shows them"
        ));
    }
    Ok(())
}

/// `refresh-url`: a plain-HTTP URL on the pod's own loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshUrl {
    /// `127.0.0.1`, `localhost` or `[::1]`, as written.
    pub host: String,
    pub port: u16,
    /// The path and query, at least `/`.
    pub path: String,
}

impl RefreshUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "write a plain http URL to the pod's own loopback, such as \
                    http://127.0.0.1:9090/-/reload (hosts: 127.0.0.1, localhost, [::1])";
        if text.len() > MAX_URL_BYTES {
            return Err(format!(
                "the URL is {} bytes, more than {MAX_URL_BYTES}: {hint}",
                text.len()
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{:?} holds spaces, control or non-ASCII characters: percent-encode them; {hint}",
                shown(text)
            ));
        }
        let Some(rest) = text.strip_prefix("http://") else {
            return Err(format!("{:?} is not a plain http URL: {hint}", shown(text)));
        };
        if text.contains('#') {
            return Err(format!("{:?} has a fragment (#): {hint}", shown(text)));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "{:?} has user information (@): {hint}",
                shown(text)
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let number = port
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n != 0 && !port.starts_with('+'))
                    .ok_or_else(|| format!("port {:?} is not 1 to 65535: {hint}", shown(port)))?;
                (host, number)
            }
            _ => (authority, 80),
        };
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "host {:?} is not the pod's own loopback: the sidecar posts only inside the pod; \
                 {hint}",
                shown(host)
            ));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The socket address to connect to (`localhost` is the IPv4 loopback, as in a pod's
    /// `/etc/hosts`).
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
        match self.host.as_str() {
            "[::1]" => SocketAddr::from((Ipv6Addr::LOCALHOST, self.port)),
            _ => SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
        }
    }
}

impl fmt::Display for RefreshUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// At most 64 characters of `text`, for messages about a value a pod wrote.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_their_unit() {
        assert_eq!(
            Interval::parse("90s").unwrap().duration(),
            Duration::from_secs(90)
        );
        assert_eq!(
            Interval::parse("5m").unwrap().duration(),
            Duration::from_secs(300)
        );
        assert_eq!(Interval::parse("24h").unwrap().duration(), MAX_INTERVAL);
        assert_eq!(Interval::parse("1440m").unwrap().to_string(), "1440m");
    }

    #[test]
    fn bad_intervals_say_how_to_write_one() {
        for bad in [
            "",
            "5",
            "m",
            "0s",
            "-5m",
            "+5m",
            "5 m",
            "1.5h",
            "5ms",
            "5M",
            "1d",
            "25h",
            "86401s",
            "99999999999s",
            "５m",
            "1h30m",
        ] {
            let err = Interval::parse(bad).expect_err(bad);
            assert!(
                err.contains("90s, 5m or 1h") || err.contains("24h"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_minimum_is_checked_apart() {
        let interval = Interval::parse("10s").unwrap();
        let err = interval.at_least(DEFAULT_MIN_INTERVAL).unwrap_err();
        assert!(err.contains("10s") && err.contains("30s"), "{err}");
        assert!(
            Interval::parse("30s")
                .unwrap()
                .at_least(DEFAULT_MIN_INTERVAL)
                .is_ok()
        );
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn signals_name_a_known_signal_and_a_process() {
        let signal = Signal::parse("SIGHUP nginx").unwrap();
        assert_eq!(signal.signal, SignalName::Hup);
        assert_eq!(signal.signal.number(), 1);
        assert_eq!(signal.process, "nginx");
        assert_eq!(signal.to_string(), "SIGHUP nginx");
        assert!(!signal.signal.is_restart());
        assert!(Signal::parse("SIGTERM app").unwrap().signal.is_restart());
        assert_eq!(Signal::parse("SIGUSR2 x").unwrap().signal.number(), 12);
        assert!(Signal::parse("SIGHUP 123456789012345").is_ok());
    }

    #[test]
    fn bad_signals_are_refused_with_the_reason() {
        let cases = [
            ("", "not a signal and a process"),
            ("SIGHUP", "not a signal and a process"),
            ("SIGHUP  nginx", "not a signal and a process"),
            ("SIGHUP nginx extra", "not a signal and a process"),
            ("HUP nginx", "not a known signal"),
            ("SIGSTOP nginx", "not a known signal"),
            ("sighup nginx", "not a known signal"),
            ("SIGHUP /usr/sbin/nginx", "not a path"),
            ("SIGHUP ngi\tnx", "printable ASCII"),
            ("SIGHUP 1234567890123456", "longer than the kernel keeps"),
            ("SIGHUP ngïnx", "printable ASCII"),
        ];
        for (text, reason) in cases {
            let err = Signal::parse(text).expect_err(text);
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn urls_must_be_plain_http_on_loopback() {
        let url = RefreshUrl::parse("http://127.0.0.1:9090/-/reload").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 9090));
        assert_eq!(url.path, "/-/reload");
        assert_eq!(url.to_string(), "http://127.0.0.1:9090/-/reload");
        let url = RefreshUrl::parse("http://localhost").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = RefreshUrl::parse("http://[::1]:8080?reload=1").unwrap();
        assert_eq!(url.path, "/?reload=1");
        assert!(url.socket_addr().is_ipv6());
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let long = format!("http://127.0.0.1/{}", "a".repeat(MAX_URL_BYTES));
        let cases = [
            ("https://127.0.0.1/reload", "not a plain http URL"),
            ("127.0.0.1:9090/reload", "not a plain http URL"),
            ("http://10.0.0.1/reload", "not the pod's own loopback"),
            ("http://127.0.0.2/", "not the pod's own loopback"),
            (
                "http://metadata.google.internal/",
                "not the pod's own loopback",
            ),
            (
                "http://169.254.169.254/latest",
                "not the pod's own loopback",
            ),
            ("http://localhost.evil.com/", "not the pod's own loopback"),
            ("http://user@127.0.0.1/", "user information"),
            ("http://evil.com@127.0.0.1/", "user information"),
            ("http://127.0.0.1:0/", "not 1 to 65535"),
            ("http://127.0.0.1:65536/", "not 1 to 65535"),
            ("http://127.0.0.1:+80/", "not 1 to 65535"),
            ("http://127.0.0.1:/", "not 1 to 65535"),
            ("http://127.0.0.1/a b", "spaces"),
            ("http://127.0.0.1/\r\nX-Evil: 1", "spaces"),
            ("http://127.0.0.1/#x", "fragment"),
            ("http://[::1", "not the pod's own loopback"),
            (long.as_str(), "more than"),
        ];
        for (text, reason) in cases {
            let err = RefreshUrl::parse(text).expect_err(text);
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
