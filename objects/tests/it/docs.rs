//! The documentation holds together: every relative link and anchor in README.md, SECURITY.md,
//! BENCHMARKS.md, certs/README.md and docs/*.md resolves, and docs/annotations.md lists exactly
//! the annotations the code knows (`annotations::KNOWN`), so neither can drift from the other.
//!
//! The markdown is scanned by hand (no markdown crate for two checks): fenced code blocks and
//! inline code spans are skipped, anchors follow GitHub's heading slugs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use secrets_injector_objects::annotations::{KNOWN, PREFIX};

const ANNOTATIONS_DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/annotations.md");
/// The heading of the reference table in docs/annotations.md.
const ANNOTATIONS_HEADING: &str = "## Pod annotations";

fn workspace_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The markdown files whose links are checked, relative to the workspace root.
fn checked_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files: Vec<PathBuf> = [
        "README.md",
        "SECURITY.md",
        "BENCHMARKS.md",
        "certs/README.md",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| Path::new("docs").join(path.file_name().expect("a file name")))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds no .md page");
    files.extend(docs);
    files
}

// ---- markdown scanning ----

/// The lines of `text` outside fenced code blocks, with their 1-based line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    // The open fence: its character and length (a closing fence is at least as long).
    let mut fence: Option<(char, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match fence {
            Some((c, len)) => {
                if marker == Some(c) && run >= len && trimmed[run..].trim().is_empty() {
                    fence = None;
                }
            }
            None if indent <= 3 && run >= 3 => fence = Some((marker.expect("a marker"), run)),
            None => out.push((index + 1, line)),
        }
    }
    out
}

/// `line` without its inline code spans (a run of backticks up to the next run of the same
/// length); an unclosed run is kept as text, as markdown does.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let mut j = i + run;
        let mut closed = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|c| **c == '`').count();
                if other == run {
                    closed = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(end) => {
                // Keep the span's text for headings' slugs; drop it for links (see callers).
                out.push('\u{0}');
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The destinations of the inline links and images (`[text](dest)`, `![alt](dest)`) and of
/// the reference definitions (`[label]: dest`) on one line of prose.
fn link_destinations(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() <= 3
        && let Some(rest) = trimmed.strip_prefix('[')
        && let Some(close) = rest.find("]:")
    {
        if let Some(dest) = rest[close + 2..].split_whitespace().next() {
            out.push(
                dest.trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned(),
            );
        }
        return out;
    }
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(at) = line[from..].find("](") {
        let start = from + at + 2;
        let mut end = start;
        let dest = if bytes.get(start) == Some(&b'<') {
            let close = line[start..].find('>').map_or(line.len(), |i| start + i);
            end = close;
            line[start + 1..close].to_owned()
        } else {
            // Up to the `)` that balances, or to the first space (a title follows).
            let mut depth = 0usize;
            while end < bytes.len() {
                match bytes[end] {
                    b'(' => depth += 1,
                    b')' if depth == 0 => break,
                    b')' => depth -= 1,
                    b' ' | b'\t' => break,
                    _ => {}
                }
                end += 1;
            }
            line[start..end].to_owned()
        };
        out.push(dest);
        from = end.max(start);
    }
    out
}

/// GitHub's anchor for a heading's text: markup dropped, lowercase, every character that is
/// not a letter, a digit, `-`, `_` or a space removed, spaces turned into `-` (not collapsed).
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` reads as its text.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The text of an ATX heading line (`## Text ##`), if `line` is one.
fn heading_text(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    // An optional closing sequence of `#`s, after a space.
    let without_closing = rest.trim_end_matches('#');
    let text = if without_closing.len() < rest.len()
        && (without_closing.is_empty() || without_closing.ends_with([' ', '\t']))
    {
        without_closing.trim_end()
    } else {
        rest
    };
    Some(text)
}

/// Every anchor a markdown file offers: its headings' slugs (a repeated slug gets `-1`, `-2`,
/// ... as on GitHub) and the `id`/`name` of its HTML anchors.
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, line) in prose_lines(text) {
        for attribute in ["id=\"", "name=\""] {
            let mut rest = line;
            while let Some(at) = rest.find(attribute) {
                let value = &rest[at + attribute.len()..];
                if let Some(end) = value.find('"') {
                    found.insert(value[..end].to_owned());
                }
                rest = &rest[at + attribute.len()..];
            }
        }
        let Some(heading) = heading_text(line) else {
            continue;
        };
        let base = slug(&heading.replace('`', ""));
        let mut unique = base.clone();
        if let Some(count) = seen.get(&base).copied() {
            let mut count = count;
            loop {
                count += 1;
                unique = format!("{base}-{count}");
                if !seen.contains_key(&unique) {
                    break;
                }
            }
            seen.insert(base.clone(), count);
        }
        seen.insert(unique.clone(), 0);
        found.insert(unique);
    }
    found
}

/// What is wrong with the link `dest` written in the file `from` (relative to `root`), or
/// `None` when it resolves. `cache` keeps each target's anchors.
fn broken(
    root: &Path,
    from: &Path,
    dest: &str,
    cache: &mut HashMap<PathBuf, HashSet<String>>,
) -> Option<String> {
    if dest.contains("://") || dest.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (dest, None),
    };
    let target = if path.is_empty() {
        root.join(from)
    } else {
        root.join(from).parent().expect("a parent").join(path)
    };
    if path.is_empty() && anchor.is_none() {
        return Some("empty link".to_owned());
    }
    if !target.exists() {
        return Some(format!("{path} does not exist"));
    }
    let anchor = anchor?;
    if anchor.is_empty() {
        return Some("empty anchor".to_owned());
    }
    if target.extension().is_none_or(|ext| ext != "md") {
        return Some(format!(
            "#{anchor} points into {path}, which is not a markdown file"
        ));
    }
    let key = target.canonicalize().unwrap_or(target.clone());
    let offered = cache.entry(key).or_insert_with(|| anchors(&read(&target)));
    if offered.contains(anchor) {
        return None;
    }
    let mut near: Vec<&String> = offered
        .iter()
        .filter(|a| a.contains(anchor) || anchor.contains(a.as_str()))
        .collect();
    near.sort();
    let shown = if path.is_empty() { "this file" } else { path };
    Some(format!(
        "{shown} has no heading with the anchor #{anchor}{}",
        if near.is_empty() {
            String::new()
        } else {
            format!(" (close: {near:?})")
        }
    ))
}

// ---- the checks ----

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = workspace_root();
    let mut cache = HashMap::new();
    let mut problems = Vec::new();
    let mut links = 0;
    for file in checked_files() {
        let text = read(&root.join(&file));
        for (number, line) in prose_lines(&text) {
            for dest in link_destinations(line) {
                links += 1;
                if let Some(problem) = broken(&root, &file, &dest, &mut cache) {
                    problems.push(format!("{}:{number}: ({dest}): {problem}", file.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} broken link(s) in the docs:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    // The scanner found the docs' links at all (a scanner that sees none passes vacuously).
    assert!(
        links >= 50,
        "only {links} links found: is the scanner broken?"
    );
}

/// The first column of the table under [`ANNOTATIONS_HEADING`] in docs/annotations.md, in order.
fn documented_annotations() -> Vec<String> {
    let text = read(Path::new(ANNOTATIONS_DOC));
    let lines = prose_lines(&text);
    let start = lines
        .iter()
        .position(|(_, line)| line.trim_end() == ANNOTATIONS_HEADING)
        .unwrap_or_else(|| panic!("docs/annotations.md has no heading {ANNOTATIONS_HEADING:?}"));
    let table: Vec<&str> = lines[start + 1..]
        .iter()
        .map(|(_, line)| *line)
        .skip_while(|line| !line.trim_start().starts_with('|'))
        .take_while(|line| line.trim_start().starts_with('|'))
        .collect();
    assert!(
        table.len() > 2,
        "docs/annotations.md: no table under {ANNOTATIONS_HEADING:?}"
    );
    // Skip the header row and the `| --- |` row.
    table[2..]
        .iter()
        .map(|row| {
            let cell = row
                .trim()
                .trim_start_matches('|')
                .split('|')
                .next()
                .unwrap_or("");
            cell.trim().trim_matches('`').to_owned()
        })
        .collect()
}

#[test]
fn the_annotations_reference_lists_exactly_the_annotations_the_code_knows() {
    let documented = documented_annotations();
    let mut repeated: Vec<&String> = Vec::new();
    let mut set = BTreeSet::new();
    for name in &documented {
        if !set.insert(name.as_str()) {
            repeated.push(name);
        }
    }
    let known: BTreeSet<&str> = KNOWN.iter().copied().collect();
    let missing: Vec<&&str> = known.difference(&set).collect();
    let extra: Vec<&&str> = set.difference(&known).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && repeated.is_empty(),
        "docs/annotations.md's table under {ANNOTATIONS_HEADING:?} must list exactly \
         objects/src/annotations.rs KNOWN, one row each:\n  missing (add a row): {missing:?}\n  \
         extra (not in KNOWN, remove the row or add the annotation to KNOWN): {extra:?}\n  \
         listed twice: {repeated:?}"
    );
    for name in &documented {
        assert!(name.starts_with(PREFIX), "{name}");
    }
}

// ---- the scanner itself ----

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Rotation: refresh while running"),
        "rotation-refresh-while-running"
    );
    assert_eq!(
        slug("webhook inject: render without a cluster"),
        "webhook-inject-render-without-a-cluster"
    );
    assert_eq!(
        slug("1. One init container: 40 parameters + 10 secrets, web identity"),
        "1-one-init-container-40-parameters--10-secrets-web-identity"
    );
    assert_eq!(
        slug("IAM policy for the pod's role"),
        "iam-policy-for-the-pods-role"
    );
    assert_eq!(
        slug("secrets-env: start time and size"),
        "secrets-env-start-time-and-size"
    );
    assert_eq!(slug("Webhook: 0.11× to 0.25×"), "webhook-011-to-025");
    assert_eq!(slug("See [the guide](install.md) now"), "see-the-guide-now");
    assert_eq!(slug("snake_case name"), "snake_case-name");
}

#[test]
fn repeated_headings_get_numbered_anchors_and_code_blocks_are_skipped() {
    let text = "# Title\n## Notes\n```sh\n## not a heading\n[x](nowhere.md)\n```\n## Notes\n\
                ## Notes ##\n### `webhook serve`\n<a id=\"custom\"></a>\n";
    let found = anchors(text);
    for anchor in [
        "title",
        "notes",
        "notes-1",
        "notes-2",
        "webhook-serve",
        "custom",
    ] {
        assert!(found.contains(anchor), "{anchor} missing from {found:?}");
    }
    assert!(!found.contains("not-a-heading"), "{found:?}");
    let lines: Vec<usize> = prose_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [1, 2, 7, 8, 9, 10]);
}

#[test]
fn links_are_found_outside_code_spans() {
    assert_eq!(
        link_destinations("See [a](docs/a.md#x), ![i](img.png \"t\") and `[b](no.md)`."),
        ["docs/a.md#x", "img.png"]
    );
    assert_eq!(
        link_destinations("[c](#anchor) [d](<with space.md>)"),
        ["#anchor", "with space.md"]
    );
    assert_eq!(
        link_destinations("[ref]: ../SECURITY.md#threat-model"),
        ["../SECURITY.md#threat-model"]
    );
    assert_eq!(
        link_destinations("[e](https://example.com/a_(b))"),
        ["https://example.com/a_(b)"]
    );
    assert!(link_destinations("``code with [f](g.md) inside``").is_empty());
}

#[test]
fn broken_links_and_anchors_are_named() {
    let root = workspace_root();
    let mut cache = HashMap::new();
    let file = Path::new("docs/annotations.md");
    assert_eq!(broken(&root, file, "../README.md", &mut cache), None);
    assert_eq!(
        broken(&root, file, "https://example.com/#x", &mut cache),
        None
    );
    let missing = broken(&root, file, "nowhere.md", &mut cache).expect("broken");
    assert!(missing.contains("nowhere.md does not exist"), "{missing}");
    let anchor = broken(&root, file, "../README.md#no-such-heading", &mut cache).expect("broken");
    assert!(
        anchor.contains("no heading with the anchor #no-such-heading"),
        "{anchor}"
    );
    let into_code = broken(&root, file, "../Cargo.toml#L1", &mut cache).expect("broken");
    assert!(into_code.contains("not a markdown file"), "{into_code}");
}
