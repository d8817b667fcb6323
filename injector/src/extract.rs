//! From fetched values to files: the object's own file, its JMESPath files, the files of a
//! parameter path or a secret prefix, and the env file.

use std::collections::BTreeMap;

use secrets_injector_objects::envfile;
use secrets_injector_objects::mode::FileMode;
use secrets_injector_objects::object::{Decode, Object};
use secrets_injector_objects::plan::{path_parameter_file, prefix_secret_file};
use secrets_injector_objects::relpath::RelPath;
use secrets_injector_objects::translation::PathTranslation;

use crate::call::{Fetched, Secret};
use crate::error::{Error, Kind};

/// One file to write, relative to the mount directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: RelPath,
    pub mode: FileMode,
    pub bytes: Vec<u8>,
}

/// The files of one object.
pub fn object_files(
    object: &Object,
    fetched: Fetched,
    translation: &PathTranslation,
) -> Result<Vec<File>, Error> {
    match fetched {
        Fetched::Value(bytes) => {
            let mut files = jmes_files(object, &bytes)?;
            files.insert(
                0,
                File {
                    path: object.file.clone(),
                    mode: object.mode,
                    bytes: decoded(object.decode, bytes, &object.file)?,
                },
            );
            Ok(files)
        }
        Fetched::Path { base, parameters } => {
            // After a failover the names lie below the failover path: name the files as
            // the object's own path would.
            let renamed;
            let named_by = if base == object.name {
                object
            } else {
                renamed = Object {
                    name: base,
                    ..object.clone()
                };
                &renamed
            };
            parameters
                .into_iter()
                .map(|(name, bytes)| {
                    let path =
                        path_parameter_file(named_by, translation, &name).map_err(|problem| {
                            Error::object("InvalidFileName", problem, Kind::Final)
                        })?;
                    let bytes = decoded(object.decode, bytes, &path)?;
                    Ok(File {
                        path,
                        mode: object.mode,
                        bytes,
                    })
                })
                .collect()
        }
        Fetched::Secrets(secrets) => secret_files(object, secrets, translation),
    }
}

/// The files of the secrets under a prefix, one per secret in the object's directory, each
/// value decoded as the object's `decode` says (a value that is not fails, naming its secret). Two
/// secrets that give one file after path translation, or a file where another's path needs a
/// directory, fail the object naming both: which of them the app should see is not ours to
/// choose.
fn secret_files(
    object: &Object,
    secrets: Vec<Secret>,
    translation: &PathTranslation,
) -> Result<Vec<File>, Error> {
    // Path -> the secret that gives it.
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut files = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let path = prefix_secret_file(object, translation, &secret.name)
            .map_err(|problem| Error::object("InvalidFileName", problem, Kind::Final))?;
        if let Some(other) = taken_by(&taken, &path) {
            return Err(Error::object(
                "FileConflict",
                format!(
                    "secrets {other:?} and {:?} both need the file {path} (path translation \
                     {translation}); rename one of them, or choose another path translation",
                    secret.name
                ),
                Kind::Final,
            ));
        }
        let name = &secret.name;
        let bytes = decoded_as(object.decode, secret.value, || {
            format!("{path} (secret {name:?})")
        })?;
        taken.insert(path.to_string(), secret.name);
        files.push(File {
            path,
            mode: object.mode,
            bytes,
        });
    }
    Ok(files)
}

/// The secret whose file is `path`, holds it as a directory, or lies inside it, if any.
pub fn taken_by<'a>(taken: &'a BTreeMap<String, String>, path: &RelPath) -> Option<&'a str> {
    let own = std::iter::once(path.to_string());
    let parents = path.parents().map(|parent| parent.to_string());
    if let Some(name) = own.chain(parents).find_map(|p| taken.get(&p)) {
        return Some(name);
    }
    let inside = format!("{path}/");
    taken
        .range(inside.clone()..)
        .next()
        .filter(|(p, _)| p.starts_with(&inside))
        .map(|(_, name)| name.as_str())
}

/// The files of the object's `jmesPath` entries over its JSON value.
fn jmes_files(object: &Object, value: &[u8]) -> Result<Vec<File>, Error> {
    if object.jmes_path.is_empty() {
        return Ok(Vec::new());
    }
    // Parse errors are not shown: their text can quote the value.
    let json: serde_json::Value = serde_json::from_slice(value).map_err(|_| {
        Error::object(
            "ValueNotJson",
            "the value is not JSON, so its jmesPath entries cannot apply",
            Kind::Final,
        )
    })?;
    let data = jmespath::Variable::try_from(json).map_err(|_| {
        Error::object(
            "ValueNotJson",
            "the value is JSON that JMESPath cannot read",
            Kind::Final,
        )
    })?;
    let data = jmespath::Rcvar::new(data);
    object
        .jmes_path
        .iter()
        .map(|entry| {
            let expression = entry.compile().map_err(|e| {
                Error::object(
                    "JmesPathInvalid",
                    format!("jmesPath {:?} does not compile: {e}", entry.path),
                    Kind::Final,
                )
            })?;
            let result = expression.search(&data).map_err(|e| {
                Error::object(
                    "JmesPathFailed",
                    format!("jmesPath {:?} failed: {}", entry.path, e.reason),
                    Kind::Final,
                )
            })?;
            let bytes = render(&result).ok_or_else(|| {
                Error::object(
                    "JmesPathNull",
                    format!(
                        "jmesPath {:?} gives null or nothing; check it against the keys of the \
                         value",
                        entry.path
                    ),
                    Kind::Final,
                )
            })?;
            Ok(File {
                path: entry.file.clone(),
                mode: entry.mode,
                bytes: decoded(entry.decode, bytes, &entry.file)?,
            })
        })
        .collect()
}

/// The bytes of the file `path` under `decode`; a value not in that encoding fails the object,
/// naming the file, never the value.
fn decoded(decode: Option<Decode>, bytes: Vec<u8>, path: &RelPath) -> Result<Vec<u8>, Error> {
    decoded_as(decode, bytes, || path.to_string())
}

/// [`decoded`], naming the value as `what` says (a secret under a prefix: its file and name).
fn decoded_as(
    decode: Option<Decode>,
    bytes: Vec<u8>,
    what: impl FnOnce() -> String,
) -> Result<Vec<u8>, Error> {
    match decode {
        None => Ok(bytes),
        Some(decode) => decode.apply(&bytes).ok_or_else(|| {
            Error::object(
                "InvalidEncoding",
                format!(
                    "the value for {} is not valid {decode} (decode: {decode}); store it \
                     {decode}-encoded, or remove decode to write it as it is",
                    what()
                ),
                Kind::Final,
            )
        }),
    }
}

/// A JMESPath result as file contents: a string as it is, a number, boolean, object or array
/// as compact JSON, null as nothing.
pub fn render(result: &jmespath::Variable) -> Option<Vec<u8>> {
    match result {
        jmespath::Variable::Null => None,
        jmespath::Variable::String(s) => Some(s.as_bytes().to_vec()),
        other => serde_json::to_vec(other).ok(),
    }
}

/// Another file of the run already uses `path`, as a file or as a directory.
pub fn clash<'a>(path: &RelPath, written: impl IntoIterator<Item = &'a RelPath>) -> bool {
    written
        .into_iter()
        .any(|w| w == path || w.starts_with_dir(path) || path.starts_with_dir(w))
}

/// The env file over the top-level files named like environment variables, and the names of
/// the files left out (value not UTF-8 or containing NUL). `mode` is the plan's
/// `env_file_mode()`: no more open than any file whose value it holds.
pub fn env_file(path: &RelPath, mode: FileMode, files: &[File]) -> (File, Vec<String>) {
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .filter(|f| f.path.is_top_level() && envfile::is_env_name(f.path.as_str()))
        .map(|f| (f.path.as_str(), f.bytes.as_slice()))
        .collect();
    let (bytes, skipped) = envfile::render(&entries);
    (
        File {
            path: path.clone(),
            mode,
            bytes,
        },
        skipped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::plan;
    use secrets_injector_objects::settings::Settings;

    fn one_object(yaml: &str, translation: &str) -> (Object, PathTranslation) {
        let translation: PathTranslation = translation.parse().unwrap();
        let settings = Settings {
            path_translation: translation,
            ..Settings::new("us-east-1")
        };
        let mut plan = plan::parse(yaml, settings).unwrap();
        (plan.objects.remove(0), translation)
    }

    fn rel(path: &str) -> RelPath {
        RelPath::from_components(path.split('/')).unwrap()
    }

    fn rendered(json: &str, expression: &str) -> Option<String> {
        let data = jmespath::Variable::from_json(json).unwrap();
        let result = jmespath::compile(expression).unwrap().search(data).unwrap();
        render(&result).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn strings_are_raw_and_everything_else_is_compact_json() {
        let json =
            r#"{"s":"a \"b\"","n":42,"f":1.5,"t":true,"o":{"k": [1, 2]},"a":["x"],"z":null}"#;
        assert_eq!(rendered(json, "s").unwrap(), "a \"b\"");
        assert_eq!(rendered(json, "n").unwrap(), "42");
        assert_eq!(rendered(json, "f").unwrap(), "1.5");
        assert_eq!(rendered(json, "t").unwrap(), "true");
        assert_eq!(rendered(json, "o").unwrap(), r#"{"k":[1,2]}"#);
        assert_eq!(rendered(json, "a").unwrap(), r#"["x"]"#);
        assert_eq!(rendered(json, "z"), None);
        assert_eq!(rendered(json, "missing"), None);
    }

    const SECRET: &str = r#"
- objectName: test/secret
  objectType: secretsmanager
  filePermission: "0640"
  jmesPath:
    - {path: username, objectAlias: SECRET_USERNAME}
    - {path: password, objectAlias: SECRET_PASSWORD, filePermission: "0600"}
"#;

    #[test]
    fn value_and_jmes_files_with_their_modes() {
        let (object, t) = one_object(SECRET, "_");
        let value = br#"{"username":"example","password":"example1234"}"#.to_vec();
        let files = object_files(&object, Fetched::Value(value.clone()), &t).unwrap();
        let got: Vec<(&str, u32, &[u8])> = files
            .iter()
            .map(|f| (f.path.as_str(), f.mode.bits(), f.bytes.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("test_secret", 0o640, value.as_slice()),
                ("SECRET_USERNAME", 0o640, b"example".as_slice()),
                ("SECRET_PASSWORD", 0o600, b"example1234".as_slice()),
            ]
        );
    }

    #[test]
    fn a_value_that_is_not_json_fails_without_showing_it() {
        let (object, t) = one_object(SECRET, "_");
        let err =
            object_files(&object, Fetched::Value(b"hunter2-not-json".to_vec()), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ValueNotJson: the value is not JSON, so its jmesPath entries cannot apply"
        );
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn a_null_or_missing_result_names_the_path() {
        let (object, t) = one_object(SECRET, "_");
        let err =
            object_files(&object, Fetched::Value(br#"{"username":"u"}"#.to_vec()), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "JmesPathNull: jmesPath \"password\" gives null or nothing; check it against the \
             keys of the value"
        );
    }

    #[test]
    fn decode_base64_writes_the_bytes_and_fails_without_the_value() {
        let yaml = "- objectName: cert\n  objectType: secretsmanager\n  decode: base64\n  \
                    jmesPath:\n    - {path: key, objectAlias: KEY, decode: base64}\n    \
                    - {path: name, objectAlias: NAME}\n";
        let (object, t) = one_object(yaml, "_");
        // The object's own file: the JSON text, base64-encoded, decoded.
        let json = br#"{"key":"/wCA","name":"n"}"#;
        let encoded = secrets_injector_objects::decode::base64_encode(json);
        let err =
            object_files(&object, Fetched::Value(encoded.clone().into_bytes()), &t).unwrap_err();
        // jmesPath entries read the value as fetched: base64 text is not JSON.
        assert!(err.to_string().starts_with("ValueNotJson"), "{err}");
        let files = object_files(&object, Fetched::Value(json.to_vec()), &t);
        let err = files.unwrap_err().to_string();
        assert_eq!(
            err,
            "InvalidEncoding: the value for cert is not valid base64 (decode: base64); store it \
             base64-encoded, or remove decode to write it as it is"
        );
        let (plain, t) = one_object(
            "- objectName: cert\n  objectType: secretsmanager\n  jmesPath:\n    \
             - {path: key, objectAlias: KEY, decode: base64}\n",
            "_",
        );
        let files = object_files(&plain, Fetched::Value(json.to_vec()), &t).unwrap();
        assert_eq!(files[1].bytes, [0xff, 0x00, 0x80]);
        let path =
            "- {objectName: /p, objectType: ssmparameterpath, objectAlias: p, decode: base64}";
        let (object, t) = one_object(path, "_");
        let fetched = Fetched::Path {
            base: "/p".into(),
            parameters: vec![("/p/a".into(), b"aGk=".to_vec())],
        };
        assert_eq!(object_files(&object, fetched, &t).unwrap()[0].bytes, b"hi");
    }

    #[test]
    fn path_parameters_become_files_in_the_alias_directory() {
        let yaml = "- {objectName: /app/cfg, objectType: ssmparameterpath, objectAlias: cfg}";
        let (object, t) = one_object(yaml, "_");
        let fetched = Fetched::Path {
            base: "/app/cfg".into(),
            parameters: vec![
                ("/app/cfg/db/user".into(), b"u".to_vec()),
                ("/app/cfg/port".into(), b"1".to_vec()),
            ],
        };
        let files = object_files(&object, fetched, &t).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, vec!["cfg/db_user", "cfg/port"]);
    }

    #[test]
    fn failover_path_files_are_named_like_the_primary_ones() {
        let yaml = "- {objectName: /app/cfg, objectType: ssmparameterpath, objectAlias: cfg}";
        let (object, t) = one_object(yaml, "False");
        let fetched = Fetched::Path {
            base: "/west/cfg".into(),
            parameters: vec![("/west/cfg/db/user".into(), b"u".to_vec())],
        };
        let files = object_files(&object, fetched, &t).unwrap();
        assert_eq!(files[0].path.as_str(), "cfg/db/user");
    }

    fn secret(name: &str, value: &[u8]) -> Secret {
        Secret {
            name: name.to_owned(),
            arn: format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}-AbCdEf"),
            version: "v1".to_owned(),
            value: value.to_vec(),
        }
    }

    const PAYMENTS: &str = "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                            objectAlias: payments, filePermission: '0640'}";

    #[test]
    fn secrets_become_files_in_the_alias_directory() {
        let (object, t) = one_object(PAYMENTS, "_");
        let fetched = Fetched::Secrets(vec![
            secret("prod/payments/api-key", b"k"),
            secret("prod/payments/db/password", &[0xff, 0x00]),
        ]);
        let files = object_files(&object, fetched, &t).unwrap();
        let got: Vec<(&str, u32, &[u8])> = files
            .iter()
            .map(|f| (f.path.as_str(), f.mode.bits(), f.bytes.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("payments/api-key", 0o640, b"k".as_slice()),
                ("payments/db_password", 0o640, [0xff, 0x00].as_slice()),
            ]
        );
    }

    #[test]
    fn decode_base64_applies_to_every_secret_under_a_prefix() {
        let yaml = "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                    objectAlias: payments, decode: base64}";
        let (object, t) = one_object(yaml, "_");
        let fetched = Fetched::Secrets(vec![
            secret("prod/payments/a", b"aGk="),
            secret("prod/payments/b", b"/wCA"),
        ]);
        let files = object_files(&object, fetched, &t).unwrap();
        let got: Vec<(&str, &[u8])> = files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("payments/a", b"hi".as_slice()),
                ("payments/b", [0xff, 0x00, 0x80].as_slice())
            ]
        );
        let fetched = Fetched::Secrets(vec![
            secret("prod/payments/a", b"aGk="),
            secret("prod/payments/db/password", b"hunter2!"),
        ]);
        let err = object_files(&object, fetched, &t).unwrap_err().to_string();
        assert_eq!(
            err,
            "InvalidEncoding: the value for payments/db_password (secret \
             \"prod/payments/db/password\") is not valid base64 (decode: base64); store it \
             base64-encoded, or remove decode to write it as it is"
        );
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn secrets_that_give_one_file_are_named_both() {
        let (object, t) = one_object(PAYMENTS, "_");
        let fetched = Fetched::Secrets(vec![
            secret("prod/payments/db/user", b"1"),
            secret("prod/payments/db_user", b"2"),
        ]);
        let err = object_files(&object, fetched, &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "FileConflict: secrets \"prod/payments/db/user\" and \"prod/payments/db_user\" both \
             need the file payments/db_user (path translation _); rename one of them, or choose \
             another path translation"
        );
        // With subdirectories, a file where another needs a directory, either way round.
        let (object, t) = one_object(PAYMENTS, "False");
        for pair in [
            ["prod/payments/db", "prod/payments/db/user"],
            ["prod/payments/db/user", "prod/payments/db"],
        ] {
            let fetched = Fetched::Secrets(pair.iter().map(|n| secret(n, b"x")).collect());
            let err = object_files(&object, fetched, &t).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "FileConflict: secrets {:?} and {:?}",
                    pair[0], pair[1]
                )),
                "{err}"
            );
        }
        // Names that only share a start are no conflict.
        let fetched = Fetched::Secrets(vec![
            secret("prod/payments/db", b"1"),
            secret("prod/payments/db-old", b"2"),
            secret("prod/payments/db2/x", b"3"),
        ]);
        assert_eq!(object_files(&object, fetched, &t).unwrap().len(), 3);
    }

    #[test]
    fn clashes_cover_equal_paths_and_directories() {
        let (a, ab, b) = (rel("cfg"), rel("cfg/x"), rel("other"));
        assert!(clash(&a, [&a]));
        assert!(clash(&a, [&ab]));
        assert!(clash(&ab, [&a]));
        assert!(!clash(&b, [&a, &ab]));
    }

    #[test]
    fn env_file_covers_top_level_env_names_only() {
        let file = |p: &str, v: &[u8]| File {
            path: rel(p),
            mode: FileMode::DEFAULT,
            bytes: v.to_vec(),
        };
        let files = vec![
            file("DB_USER", b"it's"),
            file("_test_parameter", b"p"),
            file("test_secret", b"{}"),
            file("cfg/NESTED", b"n"),
            file("not-env", b"x"),
            file("BINARY", &[0xff, 0x00]),
        ];
        let env_path = rel("env");
        let (env, skipped) = env_file(&env_path, FileMode::DEFAULT, &files);
        assert_eq!(
            String::from_utf8(env.bytes).unwrap(),
            "DB_USER='it'\\''s'\n_test_parameter='p'\ntest_secret='{}'\n"
        );
        assert_eq!(skipped, vec!["BINARY".to_owned()]);
    }
}
