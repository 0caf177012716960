//! `simkit import scriptor|apdutool FILE [--expect-from RUNLOG] [-o OUT]`: convert an old
//! script to the `.apdu` format (conversion in `simkit_conformance::import`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use simkit_conformance::import::{Format, convert};

use crate::output::Output;

/// The source format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum From {
    /// pcsc-tools scriptor: hex APDU lines, `reset`; also its `> … / < …` output.
    Scriptor,
    /// Java Card SDK apdutool: `0x80 0xCA 0x00 0x00 0x00 0x7F;`, `powerup;`.
    Apdutool,
}

/// Arguments of `simkit import`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The format of FILE.
    format: From,
    /// The script to convert.
    file: PathBuf,
    /// A recorded run of the script (scriptor or apdutool output) whose responses become the
    /// expectations. Without it expectations are left open as `any`, with a comment.
    #[arg(long, value_name = "RUNLOG")]
    expect_from: Option<PathBuf>,
    /// Write the script here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let log = args
        .expect_from
        .as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let format = match args.format {
        From::Scriptor => Format::Scriptor,
        From::Apdutool => Format::Apdutool,
    };
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let script = convert(format, &name, &text, log.as_deref())
        .with_context(|| format!("converting {}", args.file.display()))?;
    match &args.output {
        Some(p) => {
            std::fs::write(p, &script).with_context(|| format!("writing {}", p.display()))?;
            out.emit(
                &json!({ "written": p.display().to_string() }),
                &[format!("wrote {}", p.display())],
            );
        }
        None if out.is_json() => out.emit(&json!({ "script": script }), &[]),
        None => print!("{script}"),
    }
    Ok(ExitCode::SUCCESS)
}
