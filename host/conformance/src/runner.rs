//! Running a parsed [`Script`] on a card and recording what happened.
//!
//! Card access goes through [`ScriptCard`], implemented here for any `simkit_card::Channel`
//! whose card can say whether it is simulated ([`SimAccess`]: `AnyCard` and the scripted mock).
//! GET RESPONSE, `6Cxx` and chaining stay in the channel; this module only compares.
//! A test stops at its first failed step: later steps depend on earlier ones.

use std::time::{Duration, Instant};

use serde::Serialize;
use simkit_card::mock::ScriptedCard;
use simkit_card::{AnyCard, Card, CardError, Channel, SimulatorControl};
use simkit_core::apdu::{Command, Response};
use simkit_core::hexutil::to_hex;
use simkit_core::status::Sw;

use crate::expr::Vars;
use crate::pattern::{SwAlt, SwPattern, show_data};
use crate::profile::CardProfile;
use crate::script::{Action, Script};
use crate::source::Loc;

/// Access to the simulator controls of a card, if it has them.
pub trait SimAccess {
    /// The controls of a simulated card; `None` for a real one.
    fn sim_control(&mut self) -> Option<&mut dyn SimulatorControl>;
}

impl SimAccess for AnyCard {
    fn sim_control(&mut self) -> Option<&mut dyn SimulatorControl> {
        self.simulator()
    }
}

impl SimAccess for ScriptedCard {
    fn sim_control(&mut self) -> Option<&mut dyn SimulatorControl> {
        Some(self)
    }
}

/// What the runner needs of a card.
pub trait ScriptCard {
    /// Sends command APDU bytes; returns response data and status word. Not raw: through the
    /// channel (GET RESPONSE, `6Cxx`, chaining). Raw: the bytes as they are, one exchange.
    ///
    /// # Errors
    /// Transport errors, a tear ([`CardError::PowerLost`]), a command that is not an APDU.
    fn send(&mut self, apdu: &[u8], raw: bool) -> Result<(Vec<u8>, u16), CardError>;
    /// Warm reset.
    ///
    /// # Errors
    /// Transport errors.
    fn reset_card(&mut self) -> Result<(), CardError>;
    /// The simulator controls, if any.
    fn simulator(&mut self) -> Option<&mut dyn SimulatorControl>;
}

impl<C: Card + SimAccess> ScriptCard for Channel<C> {
    fn send(&mut self, apdu: &[u8], raw: bool) -> Result<(Vec<u8>, u16), CardError> {
        let resp = if raw {
            Response::parse(&self.card_mut().transmit_raw(apdu)?)?
        } else {
            self.transmit(&Command::parse(apdu)?)?
        };
        Ok((resp.data, resp.sw.to_u16()))
    }

    fn reset_card(&mut self) -> Result<(), CardError> {
        self.card_mut().reset().map(|_| ())
    }

    fn simulator(&mut self) -> Option<&mut dyn SimulatorControl> {
        self.card_mut().sim_control()
    }
}

/// A channel over `card` set up for `profile`: extended length only if the card has it.
pub fn channel_for<C: Card>(card: C, profile: &CardProfile) -> Channel<C> {
    let mut ch = Channel::new(card);
    ch.set_extended_length(profile.has("extended-length"));
    ch
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Every step matched (quirks allowed).
    Passed,
    /// A step did not match, or something broke.
    Failed {
        /// `file:line` of the step.
        location: String,
        /// The report text: step, expected vs received, status words with meanings.
        message: String,
    },
    /// The card lacks what the test needs.
    Skipped {
        /// Which capability is missing.
        reason: String,
    },
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Matched.
    Ok,
    /// Did not match.
    Failed,
    /// Did not match, but the card has the quirk the script announced.
    Quirk,
    /// Lost power in an armed tear, as expected.
    Torn,
    /// Not run on this card (with a note).
    Skipped,
    /// A note (`.echo`) or a card operation without response.
    Note,
}

/// One step as run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// `file:line`.
    pub location: String,
    /// What was done: `command`, `select`, `reset`, `power off`, `tear 3`, `echo`, ...
    pub action: String,
    /// Command bytes sent (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// Response data received (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// Status word received with its meaning, e.g. `6982 security status not satisfied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw: Option<String>,
    /// The expectation as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Result.
    pub status: StepStatus,
    /// A note (echo text, quirk text, why skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Time taken, microseconds.
    pub duration_us: u64,
}

/// One test as run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// The file, relative to the path given on the command line.
    pub file: String,
    /// The suite (folder) it belongs to.
    pub suite: String,
    /// `.name`, or the file name.
    pub name: String,
    /// Result.
    pub outcome: Outcome,
    /// The steps run.
    pub steps: Vec<StepReport>,
    /// Time taken, microseconds.
    pub duration_us: u64,
}

/// Settings for a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The card's profile.
    pub profile: CardProfile,
    /// Variables set before each test (profile `[vars]` overridden by `--set`).
    pub preset: Vars,
}

/// `9000 success` etc.
pub fn sw_text(sw: u16) -> String {
    Sw::from_u16(sw).to_string()
}

/// The SW pattern with meanings of its exact alternatives: `9000 success | 6A82 file or
/// application not found`.
pub fn sw_pattern_text(p: &SwPattern) -> String {
    let parts: Vec<String> = p
        .alts
        .iter()
        .map(|a| match *a {
            SwAlt::Word {
                value,
                mask: 0xFFFF,
            } => sw_text(value),
            SwAlt::Word { value, mask } => {
                let mut s = String::new();
                for i in (0..4).rev() {
                    let m = (mask >> (i * 4)) & 0xF;
                    let v = (value >> (i * 4)) & 0xF;
                    if m == 0 {
                        s.push('x');
                    } else {
                        s.push_str(&format!("{v:X}"));
                    }
                }
                s
            }
            SwAlt::Any => "any".to_owned(),
            SwAlt::Torn => "torn (power lost in the armed tear)".to_owned(),
        })
        .collect();
    parts.join(" | ")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

struct Run<'a> {
    card: &'a mut dyn ScriptCard,
    opts: &'a RunOptions,
    vars: Vars,
    steps: Vec<StepReport>,
    raw: bool,
    armed: bool,
    tear_skipped: bool,
    quirk: Option<(String, String)>,
    sent_any: bool,
}

enum Flow {
    Next,
    Stop(Outcome),
}

fn failure(loc: &Loc, text: String) -> Flow {
    Flow::Stop(Outcome::Failed {
        location: loc.file_line(),
        message: text,
    })
}

impl Run<'_> {
    fn record(
        &mut self,
        loc: &Loc,
        action: &str,
        status: StepStatus,
        note: Option<String>,
        took: Duration,
    ) {
        self.steps.push(StepReport {
            location: loc.file_line(),
            action: action.to_owned(),
            sent: None,
            received: None,
            sw: None,
            expected: None,
            status,
            note,
            duration_us: micros(took),
        });
    }

    fn needs(&self, cap: &str, loc: &Loc, what: &str) -> Option<Flow> {
        (!self.opts.profile.has(cap)).then(|| {
            Flow::Stop(Outcome::Skipped {
                reason: format!(
                    "card lacks capability {cap} ({what} at {})",
                    loc.file_line()
                ),
            })
        })
    }

    /// Sends and checks one command; `data_pattern` None checks only the SW (`.select`).
    fn exchange(
        &mut self,
        loc: &Loc,
        action: &str,
        apdu: Vec<u8>,
        expect: &crate::pattern::Expectation,
        check_data: bool,
    ) -> Flow {
        if let Some(max) = self.opts.profile.max_command_len
            && apdu.len() > max
        {
            return Flow::Stop(Outcome::Skipped {
                reason: format!(
                    "command at {} is {} bytes; the card takes at most {max}",
                    loc.file_line(),
                    apdu.len()
                ),
            });
        }
        if self.tear_skipped && expect.sw.only_tear() {
            return Flow::Stop(Outcome::Skipped {
                reason: format!(
                    "card lacks capability tear (step at {} only accepts a tear)",
                    loc.file_line()
                ),
            });
        }
        let armed = std::mem::take(&mut self.armed);
        self.tear_skipped = false;
        let quirk = self.quirk.take();
        let start = Instant::now();
        let result = self.card.send(&apdu, self.raw);
        let took = start.elapsed();
        self.sent_any = true;
        let mut rep = StepReport {
            location: loc.file_line(),
            action: action.to_owned(),
            sent: Some(to_hex(&apdu)),
            received: None,
            sw: None,
            expected: Some(expect.text()),
            status: StepStatus::Ok,
            note: None,
            duration_us: micros(took),
        };
        let head = format!("step {}: {}", loc.file_line(), to_hex(&apdu));
        let (data, sw) = match result {
            Err(CardError::PowerLost) if armed && expect.sw.accepts_tear() => {
                rep.status = StepStatus::Torn;
                rep.note = Some("power lost in the armed tear; the card was reset".into());
                self.steps.push(rep);
                return Flow::Next;
            }
            Err(e) => {
                rep.status = StepStatus::Failed;
                rep.note = Some(e.to_string());
                self.steps.push(rep);
                return failure(
                    loc,
                    format!(
                        "{head}\n  expected: {}\n  card error: {e}",
                        expect_line(expect, check_data)
                    ),
                );
            }
            Ok(r) => r,
        };
        rep.received = Some(to_hex(&data));
        rep.sw = Some(sw_text(sw));
        let sw_ok = expect.sw.matches(sw);
        let data_result = if check_data {
            expect.match_data(&data, &self.vars)
        } else {
            Ok(Vec::new())
        };
        let why = if armed && expect.sw.only_tear() {
            Some("the armed tear did not fire: the command completed".to_owned())
        } else if !sw_ok {
            Some("status word differs".to_owned())
        } else {
            data_result.as_ref().err().cloned()
        };
        match why {
            None => {
                if let Ok(caps) = data_result {
                    for (k, v) in caps {
                        self.vars.insert(k, v);
                    }
                }
                self.steps.push(rep);
                Flow::Next
            }
            Some(why) => {
                let text = format!(
                    "{head}\n  expected data: {}\n  received data: {}\n  expected sw:   {}\n  received sw:   {}\n  {why}",
                    if check_data {
                        if expect.data_text.is_empty() {
                            "(none)".to_owned()
                        } else {
                            expect.data_text.clone()
                        }
                    } else {
                        "(not checked)".to_owned()
                    },
                    show_data(&data),
                    sw_pattern_text(&expect.sw),
                    sw_text(sw),
                );
                if let Some((id, qtext)) = quirk
                    && self.opts.profile.has_quirk(&id)
                {
                    rep.status = StepStatus::Quirk;
                    rep.note = Some(format!("known quirk {id}: {qtext}; {why}"));
                    self.steps.push(rep);
                    return Flow::Next;
                }
                rep.status = StepStatus::Failed;
                rep.note = Some(why);
                self.steps.push(rep);
                failure(loc, text)
            }
        }
    }

    fn item(&mut self, loc: &Loc, action: &Action) -> Flow {
        let start = Instant::now();
        match action {
            Action::Name(_) | Action::Requires(_) => Flow::Next,
            Action::Echo(text) => {
                self.record(
                    loc,
                    "echo",
                    StepStatus::Note,
                    Some(text.clone()),
                    start.elapsed(),
                );
                Flow::Next
            }
            Action::Let {
                name,
                value,
                default,
            } => {
                if *default && self.vars.contains_key(name) {
                    return Flow::Next;
                }
                match value.eval(&self.vars) {
                    Ok(v) => {
                        self.vars.insert(name.clone(), v);
                        Flow::Next
                    }
                    Err(e) => failure(loc, format!("{e}")),
                }
            }
            Action::Raw(on) => {
                self.raw = *on;
                Flow::Next
            }
            Action::Quirk { id, text } => {
                self.quirk = Some((id.clone(), text.clone()));
                Flow::Next
            }
            Action::Reset => match self.card.reset_card() {
                Ok(()) => {
                    self.armed = false;
                    self.record(loc, "reset", StepStatus::Note, None, start.elapsed());
                    Flow::Next
                }
                Err(e) => failure(loc, format!("step {}: reset failed: {e}", loc.file_line())),
            },
            Action::Power(on) => {
                if let Some(skip) =
                    self.needs("power", loc, if *on { ".power on" } else { ".power off" })
                {
                    return skip;
                }
                let r = match self.card.simulator() {
                    None => {
                        return Flow::Stop(Outcome::Skipped {
                            reason: format!(
                                "card has no power control (.power at {})",
                                loc.file_line()
                            ),
                        });
                    }
                    Some(sim) if *on => sim.power_on().map(|_| ()),
                    Some(sim) => sim.power_off(),
                };
                let what = if *on { "power on" } else { "power off" };
                match r {
                    Ok(()) => {
                        self.record(loc, what, StepStatus::Note, None, start.elapsed());
                        Flow::Next
                    }
                    Err(e) => failure(loc, format!("step {}: {what} failed: {e}", loc.file_line())),
                }
            }
            Action::Tear(k) => {
                let what = format!("tear {k}");
                let sim = if self.opts.profile.has("tear") {
                    self.card.simulator()
                } else {
                    None
                };
                match sim {
                    None => {
                        self.tear_skipped = true;
                        self.record(
                            loc,
                            &what,
                            StepStatus::Skipped,
                            Some("card lacks capability tear: not armed".into()),
                            start.elapsed(),
                        );
                        Flow::Next
                    }
                    Some(sim) => match sim.tear_at(*k) {
                        Ok(()) => {
                            self.armed = true;
                            self.record(loc, &what, StepStatus::Note, None, start.elapsed());
                            Flow::Next
                        }
                        Err(e) => failure(
                            loc,
                            format!("step {}: arming the tear failed: {e}", loc.file_line()),
                        ),
                    },
                }
            }
            Action::Fresh => {
                if !self.sent_any {
                    self.record(
                        loc,
                        "fresh",
                        StepStatus::Note,
                        Some("card is factory-fresh already".into()),
                        start.elapsed(),
                    );
                    return Flow::Next;
                }
                if let Some(skip) = self.needs("fresh", loc, ".fresh") {
                    return skip;
                }
                // Mid-test: the simulator rebuilds the card (every applet installed again,
                // fresh persistent state), over its socket or through the reader's
                // pseudo-APDUs (applet-spec/simulator.md).
                let result = match self.card.simulator() {
                    Some(sim) => sim.factory_reset().map(|_| ()),
                    None => {
                        return failure(
                            loc,
                            format!(
                                "step {}: .fresh after the first command needs a simulator that can be factory-reset; this card is not one",
                                loc.file_line()
                            ),
                        );
                    }
                };
                match result {
                    Ok(()) => {
                        self.record(
                            loc,
                            "fresh",
                            StepStatus::Note,
                            Some("card factory-reset".into()),
                            start.elapsed(),
                        );
                        Flow::Next
                    }
                    Err(e) => failure(loc, format!("{loc}: factory reset failed: {e}")),
                }
            }
            Action::Select { aid, sw } => {
                let aid = match aid.eval(&self.vars) {
                    Ok(a) => a,
                    Err(e) => return failure(loc, e.to_string()),
                };
                let Ok(lc) = u8::try_from(aid.len()) else {
                    return failure(
                        loc,
                        format!("{loc}: AID of {} bytes is too long", aid.len()),
                    );
                };
                let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, lc];
                apdu.extend_from_slice(&aid);
                let expect = crate::pattern::Expectation {
                    data: Vec::new(),
                    data_text: String::new(),
                    sw: sw.clone(),
                    loc: loc.clone(),
                };
                self.exchange(loc, "select", apdu, &expect, false)
            }
            Action::Step { command, expect } => {
                let apdu = match command.eval(&self.vars) {
                    Ok(a) => a,
                    Err(e) => return failure(loc, e.to_string()),
                };
                self.exchange(loc, "command", apdu, expect, true)
            }
        }
    }
}

fn expect_line(expect: &crate::pattern::Expectation, check_data: bool) -> String {
    if check_data {
        expect.text()
    } else {
        expect.sw.text.clone()
    }
}

/// Runs one test on `card`. `file` and `suite` label the report; `name` is used when the script
/// has no `.name`.
pub fn run_script(
    script: &Script,
    file: &str,
    suite: &str,
    name: &str,
    card: &mut dyn ScriptCard,
    opts: &RunOptions,
) -> TestReport {
    let start = Instant::now();
    let name = script.name().unwrap_or(name).to_owned();
    let missing: Vec<String> = script
        .requires()
        .into_iter()
        .filter(|c| !opts.profile.has(c))
        .collect();
    let mut report = TestReport {
        file: file.to_owned(),
        suite: suite.to_owned(),
        name,
        outcome: Outcome::Passed,
        steps: Vec::new(),
        duration_us: 0,
    };
    if !missing.is_empty() {
        report.outcome = Outcome::Skipped {
            reason: format!("card lacks capability {}", missing.join(", ")),
        };
        return report;
    }
    let mut run = Run {
        card,
        opts,
        vars: opts.preset.clone(),
        steps: Vec::new(),
        raw: false,
        armed: false,
        tear_skipped: false,
        quirk: None,
        sent_any: false,
    };
    for item in &script.items {
        if let Flow::Stop(outcome) = run.item(&item.loc, &item.action) {
            report.outcome = outcome;
            break;
        }
    }
    report.steps = run.steps;
    report.duration_us = micros(start.elapsed());
    report
}

/// A test that could not even be parsed: failed, with the syntax error.
pub fn syntax_failure(file: &str, suite: &str, name: &str, err: &crate::SyntaxError) -> TestReport {
    TestReport {
        file: file.to_owned(),
        suite: suite.to_owned(),
        name: name.to_owned(),
        outcome: Outcome::Failed {
            location: err.loc.file_line(),
            message: err.to_string(),
        },
        steps: Vec::new(),
        duration_us: 0,
    }
}
