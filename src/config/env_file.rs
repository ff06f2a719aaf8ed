//! Reading an env file (`--env-file PATH`): what may be read, and its `KEY=value` syntax.
//!
//! What is read: a regular file (symbolic links followed, as `/etc/default/rtpmic` pointing at
//! a board profile is legitimate) of at most [`MAX_ENV_FILE`] bytes. It is checked with
//! `stat` before it is opened, so a FIFO or a device is never opened, and opened with
//! `O_NONBLOCK` and checked again with `fstat`, so one swapped in between cannot block the
//! reload either. `/dev/zero` once made rtpmic try a 4 GiB allocation and abort, a FIFO
//! blocked the main thread for good (SIGTERM ignored).
//!
//! The syntax is dotenvy's, which rtpmic used before, minus two things:
//! * Errors name the line and the key, and never quote the file: dotenvy's errors carry the
//!   text of the line (after an unterminated quote, the rest of the file), with no line
//!   number, and a line holds `RTPMIC_SRTP_KEY=` as readily as any other.
//! * No `$VAR` / `${VAR}` expansion: dotenvy took those from rtpmic's own process environment,
//!   so the file no longer meant the same thing to `check-config` run from a shell as to the
//!   service, and systemd's `EnvironmentFile=`, which reads the same file, expands nothing.
//!   `$` is an ordinary character.
//!
//! Accepted, one assignment per line:
//! * `KEY=value`, `KEY = value`, `export KEY=value`; a key is `[A-Za-z_][A-Za-z0-9_.]*`;
//! * blank lines and lines whose first non-blank character is `#`; after a value, blanks
//!   then `#` start a comment (`KEY=a#b` is the value `a#b`, as in dotenvy);
//! * an unquoted value runs to the first blank; `\` escapes `\ ' " $` or a space in it;
//! * `'…'` is taken literally, `"…"` takes the same escapes; either may span lines;
//! * an empty value (`KEY=`, `KEY=""`, `KEY= # comment`);
//! * a UTF-8 byte order mark at the start and CRLF line ends.
//!
//! Refused, each with the line number and the key: text after a value (`KEY=a b`: a value
//! with spaces must be quoted, as the template says), a quote inside an unquoted value,
//! an unterminated quote, any other escape (`\n`, a backslash at the end of a line), a line
//! that is not an assignment, bytes that are not UTF-8. dotenvy refused the same, or gave
//! values that systemd would read differently (`a"b c"d`).

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest env file read: 64 KiB. The template with every key documented is 12 KiB, and 64
/// destinations take 2 KiB; anything bigger is the wrong file.
pub const MAX_ENV_FILE: u64 = 64 * 1024;

/// Reads the file at `path` if it is a regular file of at most [`MAX_ENV_FILE`] bytes. The
/// error says why not, never what the file holds.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    read_regular(path, MAX_ENV_FILE, "an env file")
}

/// Reads the file at `path` if it is a regular file of at most `max` bytes (`what` names it
/// in the error): checked with `stat` before it is opened, opened non-blocking, checked
/// again with `fstat`, read to at most `max` + 1 bytes, so a FIFO, a device or a huge file
/// never blocks or fills memory. The error says why not, never what the file holds.
pub fn read_regular(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    let limit = if max.is_multiple_of(1024) {
        format!("{} KiB", max / 1024)
    } else {
        format!("{max} bytes")
    };
    let allowed = format!("allowed: a regular file of at most {limit}");
    let check = |meta: &std::fs::Metadata| -> Result<(), String> {
        let t = meta.file_type();
        if !t.is_file() {
            let kind = if t.is_dir() {
                "a directory"
            } else if t.is_fifo() {
                "a FIFO"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a file"
            };
            return Err(format!("not a regular file ({kind}); {allowed}"));
        }
        if meta.len() > max {
            return Err(format!(
                "{} bytes, more than the {limit} ({max} bytes) {what} may have; {allowed}",
                meta.len()
            ));
        }
        Ok(())
    };
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    check(&std::fs::metadata(path).map_err(cannot)?)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    check(&meta)?;
    // At most one byte more than allowed: a file that grew since fstat is caught, not read.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "more than the {limit} ({max} bytes) {what} may have; {allowed}"
        ));
    }
    Ok(bytes)
}

/// A syntax error: where, which key (when there is one to name), and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number.
    pub line: usize,
    /// The key of the assignment, when the line has one (a key name is not secret; the text
    /// of a line that is not an assignment might be, so it is never named).
    pub key: Option<String>,
    pub why: &'static str,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "line {}: {}: {}", self.line, super::shown(k), self.why),
            None => write!(f, "line {}: {}", self.line, self.why),
        }
    }
}

const NOT_ASSIGNMENT: &str = "not a KEY=value line; allowed: KEY=value, # comment, or a blank line";
const NO_EQUALS: &str = "no '=' after the key; allowed: KEY=value";
const TEXT_AFTER: &str =
    "text after the value; a value with spaces must be quoted (KEY=\"a b\"), a comment needs a blank before '#'";
const QUOTE_INSIDE: &str = "a quote inside an unquoted value; quote the whole value (KEY=\"a'b\")";
const UNTERMINATED: &str = "unterminated quote (it opens on this line and is not closed before the end of the file)";
const BAD_ESCAPE: &str = "a backslash may only escape \\ ' \" $ or a space (no \\n, no continuation lines)";
const NOT_UTF8: &str = "not UTF-8 text";

fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn key_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// The escapes dotenvy accepted, less `\n` (no key takes a newline).
fn escaped(c: char) -> Option<char> {
    matches!(c, '\\' | '\'' | '"' | '$' | ' ').then_some(c)
}

/// Parses an env file's bytes into `(key, value)` pairs in file order (a key may repeat; the
/// caller decides what that means).
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, SyntaxError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SyntaxError {
        line: 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count(),
        key: None,
        why: NOT_UTF8,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    let mut p = Cursor {
        c: text.chars().collect(),
        i: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        p.skip_blanks();
        match p.peek() {
            None => break,
            Some('\n') => {
                p.bump();
                continue;
            }
            Some('#') => {
                p.skip_comment();
                continue;
            }
            Some(_) => {}
        }
        let line = p.line;
        let err = |key: Option<&str>, why| SyntaxError {
            line,
            key: key.map(str::to_string),
            why,
        };
        let mut key = p.key().ok_or_else(|| err(None, NOT_ASSIGNMENT))?;
        // `export KEY=value` (a shell habit dotenvy accepted); `export=x` is the key "export".
        if key == "export" && p.peek().is_some_and(blank) {
            p.skip_blanks();
            if let Some(k) = p.key() {
                key = k;
            }
        }
        p.skip_blanks();
        if p.peek() != Some('=') {
            // Without '=' this may be no key at all (a pasted secret): named only when it is
            // one of ours.
            let named = key.starts_with("RTPMIC_").then_some(key.as_str());
            return Err(err(named, NO_EQUALS));
        }
        p.bump();
        p.skip_blanks();
        let value = match p.peek() {
            None | Some('\n') | Some('#') => String::new(),
            Some(q @ ('\'' | '"')) => {
                p.bump();
                p.quoted(q).map_err(|why| err(Some(&key), why))?
            }
            Some(_) => p.unquoted().map_err(|why| err(Some(&key), why))?,
        };
        p.skip_blanks();
        match p.peek() {
            None | Some('\n') => {}
            Some('#') => p.skip_comment(),
            Some(_) => return Err(err(Some(&key), TEXT_AFTER)),
        }
        out.push((key, value));
    }
    Ok(out)
}

/// A position in the file's characters, counting lines.
struct Cursor {
    c: Vec<char>,
    i: usize,
    line: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(blank) {
            self.i += 1;
        }
    }

    /// To the end of the line (the newline itself stays).
    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.i += 1;
        }
    }

    fn key(&mut self) -> Option<String> {
        if !self.peek().is_some_and(key_start) {
            return None;
        }
        let mut k = String::new();
        while let Some(c) = self.peek().filter(|&c| key_char(c)) {
            k.push(c);
            self.i += 1;
        }
        Some(k)
    }

    /// After the opening quote `q`, up to and including the closing one.
    fn quoted(&mut self, q: char) -> Result<String, &'static str> {
        let mut v = String::new();
        loop {
            match self.bump() {
                None => return Err(UNTERMINATED),
                Some(c) if c == q => return Ok(v),
                Some('\\') if q == '"' => match self.bump().and_then(escaped) {
                    Some(e) => v.push(e),
                    None => return Err(BAD_ESCAPE),
                },
                Some(c) => v.push(c),
            }
        }
    }

    /// Up to the first blank or the end of the line.
    fn unquoted(&mut self) -> Result<String, &'static str> {
        let mut v = String::new();
        while let Some(c) = self.peek().filter(|&c| !blank(c) && c != '\n') {
            self.i += 1;
            match c {
                '\'' | '"' => return Err(QUOTE_INSIDE),
                '\\' => match self.peek().filter(|&c| c != '\n').and_then(escaped) {
                    Some(e) => {
                        self.i += 1;
                        v.push(e);
                    }
                    None => return Err(BAD_ESCAPE),
                },
                c => v.push(c),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn fails(text: &str) -> SyntaxError {
        parse(text.as_bytes()).expect_err(text)
    }

    #[test]
    fn accepts_what_dotenvy_accepted() {
        let text = "\u{feff}# comment\n\n  A=1\r\nB = \"two words\"\nC='a \"b\" \\n'\nexport D=4\n\
                    E=\nF=   # only a comment\nG=a#b\nH=v # trailing\nI=\"q \\\"x\\\" \\\\ \\$\"\n\
                    J=s\\ ix\nexport=5\nK.L=6\nM='multi\nline'\nN=\"\"\nO=$HOME\n";
        assert_eq!(
            ok(text),
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "a \"b\" \\n"),
                ("D", "4"),
                ("E", ""),
                ("F", ""),
                ("G", "a#b"),
                ("H", "v"),
                ("I", "q \"x\" \\ $"),
                ("J", "s ix"),
                ("export", "5"),
                ("K.L", "6"),
                ("M", "multi\nline"),
                ("N", ""),
                // No expansion: systemd's EnvironmentFile= reads `$` as itself too.
                ("O", "$HOME"),
            ])
        );
        assert_eq!(ok(""), pairs(&[]));
        assert_eq!(ok("A=1"), pairs(&[("A", "1")]), "no newline at the end");
        assert_eq!(
            ok("A=1\nA=\n"),
            pairs(&[("A", "1"), ("A", "")]),
            "repeats kept in order"
        );
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let table: &[(&str, usize, Option<&str>, &str)] = &[
            (
                "A=1\nRTPMIC_SRTP_KEY=§ rotated 2026\n",
                2,
                Some("RTPMIC_SRTP_KEY"),
                TEXT_AFTER,
            ),
            ("#\n\nB=\"door A\nC=§\n", 3, Some("B"), UNTERMINATED),
            ("B='x", 1, Some("B"), UNTERMINATED),
            ("B=\"x\"y\n", 1, Some("B"), TEXT_AFTER),
            ("C='it''s'\n", 1, Some("C"), TEXT_AFTER),
            ("B=a\"b c\"d\n", 1, Some("B"), QUOTE_INSIDE),
            ("B=O'Brien\n", 1, Some("B"), QUOTE_INSIDE),
            ("B=a\\nb\n", 1, Some("B"), BAD_ESCAPE),
            ("B=\"a\\nb\"\n", 1, Some("B"), BAD_ESCAPE),
            ("B=abc\\\nC=1\n", 1, Some("B"), BAD_ESCAPE),
            ("A=1\n\n§\n", 3, None, NO_EQUALS),
            ("RTPMIC_SRTP_KEY §\n", 1, Some("RTPMIC_SRTP_KEY"), NO_EQUALS),
            ("A=1\n=1\n", 2, None, NOT_ASSIGNMENT),
            ("A=1\n+§\n", 2, None, NOT_ASSIGNMENT),
            (";comment\n", 1, None, NOT_ASSIGNMENT),
        ];
        for &(text, line, k, why) in table {
            let text = text.replace('§', key);
            let e = fails(&text);
            assert_eq!(
                e,
                SyntaxError {
                    line,
                    key: k.map(str::to_string),
                    why
                },
                "{text:?}"
            );
            assert!(!e.to_string().contains(&key[..6]), "{e}");
        }
        let e = parse(b"A=1\nB=\xff\n").unwrap_err();
        assert_eq!((e.line, e.why), (2, NOT_UTF8));
        assert_eq!(
            fails("A=1\nRTPMIC_SRTP_KEY=x y\n").to_string(),
            format!("line 2: RTPMIC_SRTP_KEY: {TEXT_AFTER}")
        );
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.env");
        std::fs::write(&f, vec![b'#'; MAX_ENV_FILE as usize]).unwrap();
        assert_eq!(read(&f).unwrap().len(), MAX_ENV_FILE as usize);
        std::fs::write(&f, vec![b'#'; MAX_ENV_FILE as usize + 1]).unwrap();
        assert!(read(&f).unwrap_err().contains("64 KiB"));
        for (p, kind) in [
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = read(p).unwrap_err();
            assert!(e.starts_with("not a regular file") && e.contains(kind), "{e}");
        }
        assert!(read(&dir.path().join("none")).unwrap_err().starts_with("cannot read: "));
    }

    /// A cheap stand-in for the cargo-fuzz target (which needs cargo-fuzz): random lines
    /// over the characters that matter never panic, and an error is one line that quotes
    /// nothing of the file but a key.
    #[test]
    fn random_text_never_panics_and_errors_stay_one_line() {
        let alphabet: Vec<char> = "AR_=  \t\n\r\"'\\#$x.\0é;-".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            match parse(text.as_bytes()) {
                Ok(pairs) => {
                    for (k, _) in pairs {
                        assert!(k.starts_with(key_start) && k.chars().all(key_char), "{text:?}: {k:?}");
                    }
                }
                Err(e) => {
                    let shown = e.to_string();
                    assert!(!shown.contains(['\n', '\r', '\0']), "{text:?}: {shown:?}");
                    assert!(e.line >= 1 && e.line <= 1 + text.matches('\n').count(), "{text:?}: {e}");
                }
            }
        }
    }

    /// The fuzz reproducers and seeds, through the public loader.
    #[test]
    fn fuzz_reproducers_and_seeds_keep_the_error_contract() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        for dir in ["crashes/config_env_file", "seeds/config_env_file"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let Err(errors) = crate::config::Config::from_env_file(&path) else {
                    continue;
                };
                for e in &errors.0 {
                    assert!(!e.line.contains(['\n', '\r']), "{}: {:?}", path.display(), e.line);
                    assert!(
                        !e.line.contains("WVNfX19z"),
                        "{}: shows the key: {}",
                        path.display(),
                        e.line
                    );
                    assert!(
                        e.line.starts_with("RTPMIC_") || e.line.starts_with("--env-file "),
                        "{}: {}",
                        path.display(),
                        e.line
                    );
                }
            }
        }
    }
}
