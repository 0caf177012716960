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

    /// Print an error as one line: the error and its causes joined by ": " (see [`error_line`]).
    pub(crate) fn error(&self, err: &anyhow::Error) {
        let msg = error_line(err);
        if self.json {
            println!("{}", serde_json::json!({ "error": msg }));
        }
        eprintln!("error: {msg}");
    }
}

/// The error and its causes joined by ": ", each said once. A context that the cause's own
/// message already starts with (`APPLY LIMIT UPDATE` over the card error `APPLY LIMIT UPDATE:
/// 9C09 …`, which names its command) is dropped, and so is a cause that its parent's message
/// already ends with (an error whose message embeds its source). Without this the user read
/// `APPLY LIMIT UPDATE: APPLY LIMIT UPDATE: 9C09 …`.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    let parts: Vec<String> = err.chain().map(ToString::to_string).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let named_by_cause = parts
            .get(i + 1)
            .is_some_and(|next| next == part || next.starts_with(&format!("{part}: ")));
        let said_by_parent = kept
            .last()
            .is_some_and(|prev| prev.ends_with(part.as_str()));
        if !named_by_cause && !said_by_parent {
            kept.push(part);
        }
    }
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message embeds its source, as `#[error("record {id}: {source}")]` does.
    #[derive(Debug)]
    struct Embeds {
        id: &'static str,
        source: Inner,
    }

    impl std::fmt::Display for Embeds {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "record {}: {}", self.id, self.source)
        }
    }

    impl std::error::Error for Embeds {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    /// A card error naming its command, as `CardError::Status` does.
    #[derive(Debug)]
    struct Inner;

    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("BEGIN RECORD: 9D02 store capacity exceeded")
        }
    }

    impl std::error::Error for Inner {}

    #[test]
    fn a_context_the_cause_already_names_is_said_once() {
        let e = anyhow::Error::new(Inner).context("BEGIN RECORD");
        assert_eq!(error_line(&e), "BEGIN RECORD: 9D02 store capacity exceeded");
        let e = anyhow::Error::new(Inner).context("pushing");
        assert_eq!(
            error_line(&e),
            "pushing: BEGIN RECORD: 9D02 store capacity exceeded"
        );
    }

    #[test]
    fn a_source_embedded_in_its_parent_is_said_once() {
        let e = anyhow::Error::new(Embeds {
            id: "user-data/big",
            source: Inner,
        })
        .context("backing up");
        assert_eq!(
            error_line(&e),
            "backing up: record user-data/big: BEGIN RECORD: 9D02 store capacity exceeded"
        );
    }

    #[test]
    fn a_context_that_is_only_a_prefix_of_a_word_stays() {
        let e = anyhow::Error::new(Inner).context("BEGIN");
        assert_eq!(
            error_line(&e),
            "BEGIN: BEGIN RECORD: 9D02 store capacity exceeded"
        );
    }
}
