//! Reading pcsc-tools' `scriptor` output, shared by `tests/pcsc.rs` and `examples/apdu_1000.rs`
//! (each includes this file with `#[path]`; it is no test target of its own).

/// The responses in scriptor's output: a `< ` line, continued on following lines (16 bytes
/// each) up to the one holding ` : meaning`.
pub(crate) fn scriptor_responses(out: &str) -> Vec<String> {
    let mut responses = Vec::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        match (current.as_mut(), line.strip_prefix("< ")) {
            (None, Some(rest)) => current = Some(rest.to_owned()),
            (Some(acc), None) => acc.push_str(line),
            _ => continue,
        }
        if let Some(acc) = current.take_if(|acc| acc.contains(" : ")) {
            responses.push(acc.split(" : ").next().unwrap_or("").replace(' ', ""));
        }
    }
    responses
}
