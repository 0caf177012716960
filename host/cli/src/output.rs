//! Text or JSON output, chosen once by `--json`. Commands build a `serde_json::Value` for the JSON
//! form and lines for the text form; errors are one line on stderr either way (JSON errors also go
//! to stdout as `{"error": …}` so a script reading stdout sees them).

use serde_json::Value;

/// Where and how a command prints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// True when `--json` was given.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Print a result: `value` with `--json`, otherwise the text lines.
    pub(crate) fn emit(&self, value: &Value, text: &[String]) {
        if self.json {
            println!("{value}");
        } else {
            for line in text {
                println!("{line}");
            }
        }
    }

    /// Print an error as one line: the error and its causes joined by ": ".
    pub(crate) fn error(&self, err: &anyhow::Error) {
        let msg = err
            .chain()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        if self.json {
            println!("{}", serde_json::json!({ "error": msg }));
        }
        eprintln!("error: {msg}");
    }
}
