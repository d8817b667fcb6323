//! The command line, parsed by hand: two options do not need a parser crate in a binary copied
//! into every pod.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Error;

#[derive(Debug, PartialEq)]
pub struct Args {
    /// The secrets directories, in the order given: the first value of a name wins.
    pub dirs: Vec<PathBuf>,
    pub command: OsString,
    pub args: Vec<OsString>,
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Args),
    Help,
}

/// Parses the arguments after the program's name. Everything after `--` is the command,
/// passed on untouched, however it looks.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Parsed, Error> {
    let mut argv = argv.into_iter();
    let mut dirs = Vec::new();
    loop {
        let Some(arg) = argv.next() else {
            return Err(Error::Usage(
                "no `--` and command after the options".to_owned(),
            ));
        };
        let bytes = arg.as_bytes();
        let dir = if bytes == b"--" {
            break;
        } else if bytes == b"--dir" {
            argv.next()
                .ok_or_else(|| Error::Usage("--dir needs a directory".to_owned()))?
        } else if let Some(value) = bytes.strip_prefix(b"--dir=") {
            OsStr::from_bytes(value).to_owned()
        } else if bytes == b"-h" || bytes == b"--help" {
            return Ok(Parsed::Help);
        } else {
            return Err(Error::Usage(format!(
                "unknown argument {arg:?} (the command goes after `--`)"
            )));
        };
        if dir.is_empty() {
            return Err(Error::Usage("--dir needs a directory".to_owned()));
        }
        dirs.push(PathBuf::from(dir));
    }
    if dirs.is_empty() {
        return Err(Error::Usage("at least one --dir DIR is needed".to_owned()));
    }
    let Some(command) = argv.next() else {
        return Err(Error::Usage("no command after `--`".to_owned()));
    };
    if command.is_empty() {
        return Err(Error::Usage("the command after `--` is empty".to_owned()));
    }
    Ok(Parsed::Run(Args {
        dirs,
        command,
        args: argv.collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Parsed, Error> {
        parse(args.iter().map(OsString::from))
    }

    fn usage_message(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(e @ Error::Usage(_)) => e.to_string(),
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn dirs_in_order_then_the_command_untouched() {
        let parsed = parse_strs(&[
            "--dir", "/a", "--dir=/b", "--dir", "--weird", "--", "app", "--dir", "x", "--", "-h",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            Parsed::Run(Args {
                dirs: vec!["/a".into(), "/b".into(), "--weird".into()],
                command: "app".into(),
                args: ["--dir", "x", "--", "-h"].map(OsString::from).to_vec(),
            })
        );
    }

    #[test]
    fn non_utf8_paths_and_arguments_pass() {
        let dir = OsStr::from_bytes(b"/mnt/\xff").to_owned();
        let arg = OsStr::from_bytes(b"\xfe").to_owned();
        let parsed = parse([
            OsString::from("--dir"),
            dir.clone(),
            "--".into(),
            "app".into(),
            arg.clone(),
        ])
        .unwrap();
        let Parsed::Run(args) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(args.dirs, [PathBuf::from(dir)]);
        assert_eq!(args.args, [arg]);
    }

    #[test]
    fn help() {
        assert_eq!(parse_strs(&["--help"]).unwrap(), Parsed::Help);
        assert_eq!(parse_strs(&["--dir", "/a", "-h"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (args, says) in [
            (&[][..], "no `--` and command"),
            (&["--dir", "/a"][..], "no `--` and command"),
            (&["--dir", "/a", "--"][..], "no command after `--`"),
            (
                &["--dir", "/a", "--", ""][..],
                "command after `--` is empty",
            ),
            (&["--", "app"][..], "at least one --dir DIR"),
            (&["--dir"][..], "--dir needs a directory"),
            (&["--dir=", "--", "app"][..], "--dir needs a directory"),
            (&["--dir", "", "--", "app"][..], "--dir needs a directory"),
            (
                &["--dri", "/a", "--", "app"][..],
                "unknown argument \"--dri\"",
            ),
            (&["--dir", "/a", "app"][..], "unknown argument \"app\""),
        ] {
            let message = usage_message(args);
            assert!(message.contains(says), "{args:?}: {message}");
            assert!(message.ends_with(crate::error::USAGE), "{message}");
            assert_eq!(parse_strs(args).unwrap_err().exit_code(), 2);
        }
    }
}
