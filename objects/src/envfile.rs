//! The env file: `NAME='value'` lines a shell can source (`set -a; . FILE`).

/// Whether `s` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One `NAME='value'` line per entry, in order, in POSIX shell quoting (`'` written as
/// `'\''`). Entries whose name is not an env name are skipped. Values that are not UTF-8 or
/// contain NUL cannot be passed through the environment: they are left out, and their names
/// returned so the caller can log them (never the values).
pub fn render(entries: &[(&str, &[u8])]) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let mut left_out = Vec::new();
    for (name, value) in entries {
        if !is_env_name(name) {
            continue;
        }
        match std::str::from_utf8(value) {
            Ok(text) if !text.contains('\0') => {
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
                out.extend_from_slice(shell_quote(text).as_bytes());
                out.push(b'\n');
            }
            _ => left_out.push((*name).to_owned()),
        }
    }
    (out, left_out)
}

/// `text` in POSIX shell single quotes: `'` written as `'\''`, everything else as it is.
pub fn shell_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    quoted.push_str(&text.replace('\'', r"'\''"));
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        for good in ["A", "_", "SECRET_USERNAME", "a1", "_x_9"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "A.B",
            "_test parameter",
            "é",
            "A=B",
            "test_secret\n",
        ] {
            assert!(!is_env_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn renders_quoted_lines() {
        let (out, left_out) = render(&[
            ("SECRET_USERNAME", b"example"),
            ("QUOTE", b"it's"),
            ("MULTI", b"a\nb $HOME `x` \\"),
            ("EMPTY", b""),
        ]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SECRET_USERNAME='example'\nQUOTE='it'\\''s'\nMULTI='a\nb $HOME `x` \\'\nEMPTY=''\n"
        );
        assert!(left_out.is_empty());
    }

    #[test]
    fn leaves_out_binary_and_nul_values_and_skips_bad_names() {
        let (out, left_out) = render(&[
            ("BINARY", &[0xff, 0xfe]),
            ("NUL", b"a\0b"),
            ("not-a-name", b"x"),
            ("OK", b"fine"),
        ]);
        assert_eq!(String::from_utf8(out).unwrap(), "OK='fine'\n");
        assert_eq!(left_out, ["BINARY", "NUL"]);
    }
}
