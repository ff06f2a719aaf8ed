//! Reading the keys: the machinery behind [`Config::from_pairs`](super::Config::from_pairs).
//!
//! [`Parser`] holds the values given, reads every key of a table top to bottom through its
//! [`Kind`], and collects the problems, bounded so that a hostile file gives a short report:
//! at most [`MAX_LINES_PER_KEY`] lines per key (one more counts the rest), values quoted up
//! to [`MAX_SHOWN`] characters, secrets never. The cross-key rules ([`super::rules`]) then
//! use the same [`Parser::error`].

use std::collections::{BTreeMap, HashSet};

use super::keys::{Key, KeyDefault, Kind};
use super::{Config, ConfigError, MAX_LINES_PER_KEY, MAX_SHOWN, MAX_UNKNOWN_KEYS};

/// The state while one configuration is read: the values given, the problems found.
pub(super) struct Parser {
    /// The keys known; [`super::KEYS`] except in tests of the table machinery.
    keys: &'static [Key],
    /// The value of each known key that was given (not empty; the last assignment).
    values: BTreeMap<String, String>,
    /// Each problem with the key it is about.
    errors: Vec<(String, ConfigError)>,
    /// How many problems each key had, shown or not.
    lines_per_key: BTreeMap<String, usize>,
    /// The number each [`Kind::Int`] key was read as (its value or its default), for a rule
    /// about a number the `Config` does not keep: the loss bounds under a fixed loss.
    numbers: BTreeMap<&'static str, u64>,
}

impl Parser {
    /// Takes `KEY=value` pairs. Keys not starting with `RTPMIC_` are skipped (the process
    /// environment holds many); unknown `RTPMIC_*` keys are reported at once, by name only (a
    /// misspelt secret key would show its secret). A key given twice takes its last value,
    /// and an empty (or blank) value removes it: the default applies.
    pub fn new<I, K, V>(keys: &'static [Key], pairs: I) -> Parser
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut values = BTreeMap::new();
        // Distinct unknown keys: how many, and the first few by name (in the order given).
        let mut unknown_seen = HashSet::new();
        let mut unknown: Vec<String> = Vec::new();
        for (k, v) in pairs {
            let (k, v) = (k.into(), v.into());
            if !k.starts_with("RTPMIC_") {
                continue;
            }
            if keys.iter().any(|s| s.name == k) {
                let v = v.trim();
                if v.is_empty() {
                    values.remove(&k);
                } else {
                    values.insert(k, v.to_string());
                }
            } else if unknown_seen.insert(k.clone()) && unknown.len() <= MAX_UNKNOWN_KEYS {
                unknown.push(k);
            }
        }
        let mut p = Parser {
            keys,
            values,
            errors: Vec::new(),
            lines_per_key: BTreeMap::new(),
            numbers: BTreeMap::new(),
        };
        let named = if unknown_seen.len() > MAX_UNKNOWN_KEYS + 1 {
            MAX_UNKNOWN_KEYS
        } else {
            unknown.len()
        };
        for k in &unknown[..named] {
            let line = format!("{}: unknown key; {}", shown(k), p.nearest_key_hint(k));
            p.errors.push((k.clone(), ConfigError { line: one_line(&line) }));
        }
        if let Some(k) = unknown.get(named) {
            let more = unknown_seen.len() - named;
            let line = format!("{}: unknown key, and {} more unknown keys", shown(k), more - 1);
            p.errors.push((k.clone(), ConfigError { line: one_line(&line) }));
        }
        p
    }

    /// Reads every key into `c`, top to bottom, so a key's reader may look at the fields of
    /// the keys above it. A key that is not given, or whose value is refused, reads its
    /// documented default when that is a value ([`KeyDefault::Value`]): `--help`, the
    /// template and the behaviour cannot disagree. A described default is left to `c`'s
    /// placeholder and the rules.
    pub fn read_keys(&mut self, c: &mut Config) {
        for key in self.keys {
            let value = self.values.get(key.name).cloned();
            if let Some(v) = &value {
                self.read(key, c, v);
            }
            if let KeyDefault::Value(default) = key.default {
                if value.is_none() || self.refused(key.name) {
                    self.read(key, c, default);
                }
            }
        }
    }

    /// Reads one value of `key` through its kind.
    fn read(&mut self, key: &'static Key, c: &mut Config, v: &str) {
        let mut r = KeyReader { parser: self, key };
        match key.kind {
            Kind::Word(set) => {
                if !set(c, v) {
                    r.refuse(&format!("allowed: {}", key.allowed));
                }
            }
            Kind::OnOff(set) => match on_off(v) {
                Some(b) => set(c, b),
                None => r.refuse(&format!("allowed: {}", key.allowed)),
            },
            Kind::Int { lo, hi, hex, set } => {
                if let Some(n) = r.int(v, lo, hi, hex) {
                    set(c, n);
                }
            }
            Kind::Text(set) => {
                if let Some(t) = r.text(v) {
                    set(c, t);
                }
            }
            Kind::Custom(read) => read(&mut r, c, v),
        }
    }

    /// Whether `key` was given a (non-empty) value.
    pub fn given(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Whether a problem with `key` was recorded.
    pub fn refused(&self, key: &str) -> bool {
        self.lines_per_key.get(key).is_some_and(|&n| n > 0)
    }

    /// Whether `key` was given and read without a problem (so far): a rule checks such a
    /// value against other keys, and puts a default in place of any other.
    pub fn accepted(&self, key: &str) -> bool {
        self.given(key) && !self.refused(key)
    }

    /// The number an integer key was read as: its value, or its default when not given or
    /// refused.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.numbers.get(key).copied()
    }

    /// The allowed text of `key`, as `--help` shows it.
    pub fn allowed(&self, key: &str) -> &'static str {
        self.key(key).map_or("", |k| k.allowed)
    }

    fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Records a problem with `key`: `KEY="value": why`, the value `"(hidden)"` for a secret.
    /// Past [`MAX_LINES_PER_KEY`] for one key, it is only counted (and not even formatted).
    pub fn error(&mut self, key: &str, why: &str) {
        debug_assert!(self.key(key).is_some(), "{key} is not in the key table");
        let n = self.lines_per_key.entry(key.to_string()).or_default();
        *n += 1;
        if *n > MAX_LINES_PER_KEY {
            return;
        }
        let secret = self.key(key).is_some_and(|k| k.secret.is_some()) || is_secret(key);
        let value = if secret {
            "(hidden)"
        } else {
            self.values.get(key).map_or("", String::as_str)
        };
        let e = ConfigError::new(key, value, why);
        self.errors.push((key.to_string(), e));
    }

    /// The problems: unknown keys first, then key by key in table order (each key's in the
    /// order found), each key's overflow counted on a line after its last shown one.
    pub fn finish(self) -> Vec<ConfigError> {
        let mut errors = self.errors;
        let keys = self.keys;
        errors.sort_by_key(|(key, _)| keys.iter().position(|k| k.name == key));
        let mut out = Vec::with_capacity(errors.len());
        for (i, (key, e)) in errors.iter().enumerate() {
            out.push(e.clone());
            let total = self.lines_per_key.get(key).copied().unwrap_or(0);
            let last_shown = !errors[i + 1..].iter().any(|(k, _)| k == key);
            if total > MAX_LINES_PER_KEY && last_shown {
                out.push(ConfigError {
                    line: format!("{key}: … and {} more problems", total - MAX_LINES_PER_KEY),
                });
            }
        }
        out
    }

    /// "did you mean RTPMIC_X?" for the known key nearest to `key` (Levenshtein distance, at
    /// most a third of the name after `RTPMIC_`, and at least 2), else where the keys are
    /// listed.
    fn nearest_key_hint(&self, key: &str) -> String {
        let fallback = "allowed: the keys in `rtpmic --help` and systemd/rtpmic.env".to_string();
        let Some(name) = key.strip_prefix("RTPMIC_").filter(|n| n.len() <= 64) else {
            return fallback;
        };
        let name = name.to_ascii_uppercase();
        let best = self
            .keys
            .iter()
            .map(|k| {
                (
                    edit_distance(&name, k.name.strip_prefix("RTPMIC_").unwrap_or(k.name)),
                    k.name,
                )
            })
            .min();
        match best {
            Some((d, k)) if d <= (name.len() / 3).max(2) => format!("did you mean {k}?"),
            _ => fallback,
        }
    }
}

/// The key being read, for its [`Kind`]: refuses its value with the key's name, and reads
/// the common shapes with the common messages. [`Kind::Custom`] readers get one.
pub struct KeyReader<'a> {
    parser: &'a mut Parser,
    key: &'static Key,
}

impl KeyReader<'_> {
    /// The key's allowed text, for a message's `allowed: …` part.
    pub fn allowed(&self) -> &'static str {
        self.key.allowed
    }

    /// Refuses the value: records `KEY="value": why`.
    pub fn refuse(&mut self, why: &str) {
        self.parser.error(self.key.name, why);
    }

    /// An integer in `lo..=hi`; decimal, or 0x hex when `hex` is set. A number outside
    /// (negative, or too large for any integer type) is "out of range"; only what is not a
    /// number at all is "not a whole number".
    pub fn int(&mut self, v: &str, lo: u64, hi: u64, hex: bool) -> Option<u64> {
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) if hex => u64::from_str_radix(h, 16),
            _ => v.parse::<u64>(),
        };
        let negative = v
            .strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        match parsed {
            Ok(n) if (lo..=hi).contains(&n) => {
                self.parser.numbers.insert(self.key.name, n);
                Some(n)
            }
            Err(e) if !negative && *e.kind() != std::num::IntErrorKind::PosOverflow => {
                self.refuse(&format!("not a whole number; allowed: {}", self.allowed()));
                None
            }
            _ => {
                self.refuse(&format!("out of range; allowed: {}", self.allowed()));
                None
            }
        }
    }

    /// A text value, refused when it holds a control character, which has no place in a
    /// name, a path or an RTCP SDES item (RFC 3550 §6.5) and would garble the log line or
    /// terminal that prints it.
    pub fn text(&mut self, v: &str) -> Option<String> {
        if v.contains(char::is_control) {
            self.refuse(&format!("contains a control character; allowed: {}", self.allowed()));
            return None;
        }
        Some(v.to_string())
    }
}

/// `on` or `off`, in any case.
fn on_off(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("on") {
        Some(true)
    } else if v.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// Whether a key's name says its value is a secret: KEY, PASSWORD or SECRET in any case
/// (`RTPMIC_SRTP_KEY`, `RTPMIC_RTSP_PASSWORD`), but not a name ending in `_FILE`, whose
/// value is the path of a file holding the secret (`RTPMIC_RTSP_PASSWORD_FILE`). No error
/// line shows a secret, even when the table does not know the key; the table's own keys must
/// say `secret` too (a test checks).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    !k.ends_with("_FILE") && ["KEY", "PASSWORD", "SECRET"].iter().any(|w| k.contains(w))
}

/// At most [`MAX_SHOWN`] characters of `text`, then `…` when there was more: what an error
/// line may quote of a key, a value or a part of one.
pub(super) fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Control characters (a CR or NUL in a key name, a newline in a value) escaped, so that every
/// problem stays one line of the log.
pub(super) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Levenshtein distance between two short ASCII names (bytes).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
