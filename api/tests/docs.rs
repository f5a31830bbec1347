//! The documentation stays true where a test can tell: every message docs/troubleshooting.md
//! quotes is still in the code, word for word (the configuration reference and the packaged
//! settings file have their own tests in `config`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// Every string the hub's and the web app's code holds, with Rust's line continuations joined.
fn source_text() -> String {
    fn walk(dir: &Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, text);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                // `\` at a line's end in a string skips the line break and the next line's indent.
                let mut joined = String::with_capacity(code.len());
                let mut rest = code.as_str();
                while let Some(at) = rest.find("\\\n") {
                    joined.push_str(&rest[..at]);
                    rest = rest[at + 2..].trim_start();
                }
                joined.push_str(rest);
                text.push_str(&joined);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    walk(&root.join("src"), &mut text);
    walk(&root.join("../web/src"), &mut text);
    text
}

#[test]
fn troubleshooting_quotes_what_the_hub_says() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/troubleshooting.md")).unwrap();
    let code = source_text();
    let mut quoted = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        match (inside, line.trim()) {
            (false, "```text") => inside = true,
            (true, "```") => inside = false,
            (true, message) => quoted.push(message.to_owned()),
            _ => {}
        }
    }
    assert!(quoted.len() >= 10, "the page quotes the hub: {quoted:?}");
    // A configuration error reads `VARIABLE: invalid value; expected WHAT`: its parts are apart
    // in the code.
    const INVALID: &str = ": invalid value; expected ";
    assert!(code.contains("invalid value; expected"));
    for message in &quoted {
        for part in message.split('…').flat_map(|p| p.split(INVALID)) {
            let part = part.trim();
            if part.chars().count() >= 8 {
                assert!(
                    code.contains(part),
                    "docs/troubleshooting.md quotes {part:?} ({message:?}), which the code no longer says"
                );
            }
        }
    }
}
