//! Recording a live session as a script: every exchange a `Channel` makes (seen through its
//! trace hook) becomes a step whose expectation is the response observed.
//!
//! Steps are what a script sees, not what went over the wire: GET RESPONSE exchanges are merged
//! into the command they continue, a `6Cxx` re-issue replaces the first answer, and a command
//! chain is put back together, because the runner's channel does all three again on replay.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use simkit_card::channel::TraceHook;
use simkit_card::{Exchange, ExchangeKind};
use simkit_core::apdu::{Command, LengthEncoding};
use simkit_core::hexutil::{to_hex, to_hex_spaced};

/// Environment variable naming the file a CLI command records its card session to.
pub const RECORD_ENV: &str = "SIMKIT_RECORD";

#[derive(Debug, Default)]
struct Pending {
    command: Vec<u8>,
    data: Vec<u8>,
    sw: [u8; 2],
    last: Option<ExchangeKind>,
}

/// Turns wire exchanges into script steps.
#[derive(Debug, Default)]
pub struct StepMerger {
    pending: Option<Pending>,
    chain: Vec<Command>,
}

fn split(resp: &[u8]) -> (Vec<u8>, [u8; 2]) {
    match resp.len() {
        0 | 1 => (Vec::new(), [0, 0]),
        n => {
            let (d, sw) = resp.split_at(n - 2);
            (
                d.to_vec(),
                [
                    sw.first().copied().unwrap_or(0),
                    sw.get(1).copied().unwrap_or(0),
                ],
            )
        }
    }
}

/// The script line for one step: `COMMAND -> [DATA] SW`.
pub fn step_line(command: &[u8], data: &[u8], sw: [u8; 2]) -> String {
    if data.is_empty() {
        format!("{} -> {}", to_hex_spaced(command), to_hex(&sw))
    } else {
        format!(
            "{} -> {} {}",
            to_hex_spaced(command),
            to_hex(data),
            to_hex(&sw)
        )
    }
}

impl StepMerger {
    /// A merger with nothing pending.
    pub fn new() -> StepMerger {
        StepMerger::default()
    }

    /// Feeds one exchange; returns the line of a step it completed, if any.
    pub fn push(&mut self, kind: ExchangeKind, command: &[u8], response: &[u8]) -> Option<String> {
        let (data, sw) = split(response);
        match kind {
            ExchangeKind::ChainPiece => {
                let done = self.finish();
                if let Ok(c) = Command::parse(command) {
                    self.chain.push(c);
                }
                done
            }
            ExchangeKind::Command => {
                let done = self.finish();
                let command = if self.chain.is_empty() {
                    command.to_vec()
                } else {
                    self.unchain(command)
                };
                self.pending = Some(Pending {
                    command,
                    data,
                    sw,
                    last: Some(kind),
                });
                done
            }
            ExchangeKind::GetResponse => {
                if let Some(p) = self.pending.as_mut() {
                    p.data.extend_from_slice(&data);
                    p.sw = sw;
                    p.last = Some(kind);
                }
                None
            }
            ExchangeKind::Reissue => {
                if let Some(p) = self.pending.as_mut() {
                    if p.last != Some(ExchangeKind::GetResponse) {
                        p.data.clear();
                    }
                    p.data.extend_from_slice(&data);
                    p.sw = sw;
                }
                None
            }
        }
    }

    /// Puts a chain back together: CLA without the chaining bit, all data, the last Le.
    fn unchain(&mut self, last: &[u8]) -> Vec<u8> {
        let pieces = std::mem::take(&mut self.chain);
        let Ok(last_cmd) = Command::parse(last) else {
            return last.to_vec();
        };
        let mut data = Vec::new();
        for p in &pieces {
            data.extend_from_slice(&p.data);
        }
        data.extend_from_slice(&last_cmd.data);
        let mut whole =
            Command::new(last_cmd.cla & !0x10, last_cmd.ins, last_cmd.p1, last_cmd.p2).data(data);
        whole.le = last_cmd.le;
        whole
            .to_bytes(LengthEncoding::Auto)
            .unwrap_or_else(|_| last.to_vec())
    }

    /// The line of the step still pending, if any.
    pub fn finish(&mut self) -> Option<String> {
        self.pending
            .take()
            .map(|p| step_line(&p.command, &p.data, p.sw))
    }
}

struct FileRecorder {
    out: File,
    merger: StepMerger,
}

impl FileRecorder {
    fn write(&mut self, line: Option<String>) {
        if let Some(l) = line {
            // A recording that cannot be written must not break the session it records; the
            // file then ends early, which the user sees.
            let _ = writeln!(self.out, "{l}");
        }
    }
}

impl Drop for FileRecorder {
    fn drop(&mut self) {
        let last = self.merger.finish();
        self.write(last);
        let _ = self.out.flush();
    }
}

/// Creates (truncates) `path`, writes the script header, and returns a trace hook for
/// `Channel::set_trace` that appends a step per command; the last step is written when the
/// channel (and with it the hook) is dropped.
///
/// # Errors
/// The file cannot be created.
pub fn file_hook(path: &Path, what: &str) -> io::Result<TraceHook> {
    let mut out = File::create(path)?;
    writeln!(
        out,
        "# Recorded by `simkit test --record` from: {what}\n\
         # Expectations are the responses observed; loosen them (.., *, {{name:N}}) where the data\n\
         # changes from run to run (MACs over counters, random challenges).\n\
         .name \"recorded: {}\"",
        what.replace('"', "'")
    )?;
    let mut rec = FileRecorder {
        out,
        merger: StepMerger::new(),
    };
    Ok(Box::new(move |x: &Exchange<'_>| {
        let line = rec.merger.push(x.kind, x.command, x.response);
        rec.write(line);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn merges_get_response_reissue_and_chains() {
        let mut m = StepMerger::new();
        assert_eq!(
            m.push(ExchangeKind::Command, &hx("80CA000000"), &hx("6102")),
            None
        );
        assert_eq!(
            m.push(
                ExchangeKind::GetResponse,
                &hx("00C0000002"),
                &hx("AABB9000")
            ),
            None
        );
        let first = m.push(ExchangeKind::Command, &hx("80CB000005"), &hx("6C02"));
        assert_eq!(first.as_deref(), Some("80 CA 00 00 00 -> AABB 9000"));
        m.push(ExchangeKind::Reissue, &hx("80CB000002"), &hx("01029000"));
        assert_eq!(m.finish().as_deref(), Some("80 CB 00 00 05 -> 0102 9000"));
        m.push(
            ExchangeKind::ChainPiece,
            &hx("9022000002 0102"),
            &hx("9000"),
        );
        m.push(ExchangeKind::Command, &hx("8022000001 03"), &hx("6982"));
        assert_eq!(
            m.finish().as_deref(),
            Some("80 22 00 00 03 01 02 03 -> 6982")
        );
        assert_eq!(m.finish(), None);
    }

    #[test]
    fn file_hook_writes_a_script_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rec.apdu");
        {
            let mut hook = file_hook(&p, "credit status").unwrap();
            for (c, r) in [("00A4040002F001", "9000"), ("8010000031", "00019000")] {
                hook(&Exchange {
                    kind: ExchangeKind::Command,
                    command: &hx(c),
                    response: &hx(r),
                    elapsed: std::time::Duration::ZERO,
                });
            }
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.ends_with("00 A4 04 00 02 F0 01 -> 9000\n80 10 00 00 31 -> 0001 9000\n"),
            "{text}"
        );
        let s = crate::Script::parse_str("rec.apdu", &text).unwrap();
        assert_eq!(s.name(), Some("recorded: credit status"));
        assert_eq!(s.items.len(), 3);
    }
}
