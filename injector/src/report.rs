//! The failure report: every failed object with its code and a hint, on stderr and in the
//! termination log (`kubectl describe pod` shows the latter).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The kubelet reads at most this much of the termination log.
pub const TERMINATION_LOG_LIMIT: usize = 4096;

/// The report's text: a header line, then one line per failure.
pub fn full(header: &str, lines: &[String]) -> String {
    let mut text =
        String::with_capacity(header.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>() + 1);
    text.push_str(header);
    text.push('\n');
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The report cut to `limit` bytes: as many whole lines as fit, then "... and N more" for the
/// lines left out. A header alone over the limit is cut at a character boundary.
pub fn truncated(header: &str, lines: &[String], limit: usize) -> String {
    let text = full(header, lines);
    if text.len() <= limit {
        return text;
    }
    let mut out = cut(header, limit.saturating_sub(1));
    out.push('\n');
    for (shown, line) in lines.iter().enumerate() {
        let more = lines.len() - shown - 1;
        let tail = format!("... and {more} more\n");
        // Keep room for the tail unless this is the last line.
        let room = if more == 0 { 0 } else { tail.len() };
        if out.len() + line.len() + 1 + room <= limit {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let tail = format!("... and {} more\n", lines.len() - shown);
        if out.len() + tail.len() <= limit {
            out.push_str(&tail);
        }
        return out;
    }
    out
}

fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Writes the termination log when the file exists and is writable (the kubelet creates it);
/// never creates it. Returns whether it was written.
pub fn write_termination_log(path: &Path, text: &str) -> bool {
    let Ok(mut file) = OpenOptions::new().write(true).truncate(true).open(path) else {
        return false;
    };
    file.write_all(text.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, width: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let head = format!("objects[{i}] (objectName \"/p/{i}\"): ParameterNotFound: ");
                format!("{head}{}", "x".repeat(width.saturating_sub(head.len())))
            })
            .collect()
    }

    #[test]
    fn short_reports_are_whole() {
        let l = lines(3, 60);
        let text = truncated("2 failed", &l, TERMINATION_LOG_LIMIT);
        assert_eq!(text, full("2 failed", &l));
        assert!(text.ends_with(&format!("{}\n", l[2])));
    }

    #[test]
    fn long_reports_end_with_the_number_left_out() {
        let l = lines(200, 100);
        let text = truncated("header", &l, TERMINATION_LOG_LIMIT);
        assert!(text.len() <= TERMINATION_LOG_LIMIT, "{}", text.len());
        let shown = text
            .lines()
            .filter(|line| line.starts_with("objects["))
            .count();
        assert!(shown > 30, "{shown}");
        assert!(
            text.ends_with(&format!("... and {} more\n", 200 - shown)),
            "{text}"
        );
        // Whole lines only.
        for line in text.lines().filter(|line| line.starts_with("objects[")) {
            assert_eq!(line.len(), 100);
        }
    }

    #[test]
    fn the_limit_holds_at_every_size() {
        for n in 0..80 {
            for width in [40, 99, 500, 5000] {
                let text = truncated("header line", &lines(n, width), 4096);
                assert!(text.len() <= 4096, "n={n} width={width}: {}", text.len());
                let shown = text
                    .lines()
                    .filter(|line| line.starts_with("objects["))
                    .count();
                if shown < n {
                    assert!(text.ends_with(&format!("... and {} more\n", n - shown)));
                }
            }
        }
    }

    #[test]
    fn a_last_line_that_just_fits_needs_no_tail() {
        let l = vec!["a".repeat(10)];
        assert_eq!(truncated("h", &l, 2 + 11), "h\naaaaaaaaaa\n");
    }

    #[test]
    fn termination_log_is_written_only_when_it_exists() {
        let dir = std::env::temp_dir().join(format!("injector-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        assert!(!write_termination_log(&missing, "x"));
        assert!(!missing.exists());
        let log = dir.join("termination-log");
        std::fs::write(&log, "old and longer").unwrap();
        assert!(write_termination_log(&log, "new"));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
