//! Builds the worked example. Everything here is fixed data, so a failure to build is a bug
//! in this file; it is reported inside the JSON rather than by panicking.

use serde_json::{Value, json};

use super::BackupError;
use super::apdu_bytes;
use super::commands::{
    self as cmd, BackupStatus, InstallParams, ManifestPage, Passcode, SessionKind, StatusFlags,
};
use super::manifest::{Category, ManifestEntry, RecordName};
use super::plan::{Transport, read_plan, write_plan};
use crate::apdu::Command;

const PAIRING: &[u8] = b"123456";
const REPROVISIONING: &[u8] = b"87654321";
const WRONG: &[u8] = b"000000";

struct Conversation {
    steps: Vec<Value>,
}

impl Conversation {
    fn step(&mut self, name: &str, command: &Command, data: &[u8], sw: u16, note: &str) {
        let mut response = data.to_vec();
        response.extend_from_slice(&sw.to_be_bytes());
        self.steps.push(json!({
            "step": self.steps.len() + 1,
            "name": name,
            "command": hex::encode_upper(apdu_bytes(command)),
            "response": hex::encode_upper(response),
            "note": note,
        }));
    }
}

fn record(category: Category, name: &str, data: &[u8]) -> Result<ManifestEntry, BackupError> {
    ManifestEntry::for_data(category, RecordName::new(name)?, data)
}

pub(super) fn build() -> Value {
    match try_build() {
        Ok(v) => v,
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn ui_conf() -> Vec<u8> {
    // 300 bytes: long enough to need a two-segment chain over short APDUs.
    let mut data = Vec::with_capacity(300);
    let mut line = 0u32;
    while data.len() < 300 {
        data.extend_from_slice(format!("key{line:02}=value{line:02}\n").as_bytes());
        line += 1;
    }
    data.truncate(300);
    data
}

#[allow(clippy::too_many_lines)]
fn try_build() -> Result<Value, BackupError> {
    let params = InstallParams {
        capacity: 65_536,
        max_records: 16,
        pairing_try_limit: 5,
        reprovisioning_try_limit: 3,
    };
    let transport = Transport::SHORT;
    let carrier_data = b"APN=internet.simkit.example\n".to_vec();
    let notes_data = b"buy milk\n".to_vec();
    let ui_data = ui_conf();
    let carrier = record(Category::ServiceBooks, "carrier.sb", &carrier_data)?;
    let notes = record(Category::UserData, "notes.txt", &notes_data)?;
    let ui = record(Category::Preferences, "ui.conf", &ui_data)?;

    let status = |generation: u32, used: u32, count: u16, pairing: u8, flags: u8| {
        BackupStatus {
            version: BackupStatus::VERSION,
            generation,
            capacity: params.capacity,
            used,
            free: params.capacity - used,
            record_count: count,
            max_records: params.max_records,
            max_command_data: 0x7FFF,
            max_response_data: 0x7FFF,
            pairing_tries_left: pairing,
            reprovisioning_tries_left: params.reprovisioning_try_limit,
            flags: StatusFlags(flags),
        }
        .encode()
    };
    let ok = 0x9000;
    let mut c = Conversation { steps: Vec::new() };

    c.step(
        "SELECT",
        &cmd::select(),
        &[],
        ok,
        "select the backup-store applet",
    );
    c.step(
        "GET STATUS",
        &cmd::get_status(),
        &status(0, 0, 0, 5, 0x00),
        ok,
        "fresh card: no passcode set; generation, used, free and record count hidden (zero)",
    );
    c.step(
        "SET PASSCODE",
        &cmd::set_passcode(Passcode::Pairing, PAIRING)?,
        &[],
        ok,
        "pairing passcode \"123456\"",
    );
    c.step(
        "SET PASSCODE",
        &cmd::set_passcode(Passcode::Reprovisioning, REPROVISIONING)?,
        &[],
        ok,
        "reprovisioning passcode \"87654321\"",
    );
    c.step(
        "VERIFY",
        &cmd::verify(Passcode::Pairing, WRONG)?,
        &[],
        0x63C4,
        "wrong pairing passcode: 4 tries left",
    );
    c.step(
        "VERIFY",
        &cmd::verify(Passcode::Pairing, PAIRING)?,
        &[],
        ok,
        "pairing passcode verified; try counter back to 5",
    );
    c.step(
        "GET MANIFEST",
        &cmd::get_manifest(0, 256),
        &[],
        cmd::SW_STORE_EMPTY,
        "no generation stored yet: the host makes a full backup",
    );

    // Full backup: generation 1.
    c.step(
        "BEGIN SESSION",
        &cmd::begin_session(SessionKind::Full),
        &[],
        ok,
        "full session: staging starts empty",
    );
    for (entry, data) in [(&carrier, &carrier_data), (&notes, &notes_data)] {
        c.step(
            "BEGIN RECORD",
            &cmd::begin_record(entry),
            &[],
            ok,
            &format!("{}: {} bytes, SHA-256 declared", entry.id(), entry.length),
        );
        for chunk in write_plan(entry.length, &transport)? {
            for apdu in cmd::write_chunk(&chunk, data)? {
                c.step(
                    "WRITE DATA",
                    &apdu,
                    &[],
                    ok,
                    "offset 0, whole record in one short APDU",
                );
            }
        }
        c.step(
            "END RECORD",
            &cmd::end_record(),
            &[],
            ok,
            "length and SHA-256 match: record staged",
        );
    }
    c.step(
        "COMMIT",
        &cmd::commit(),
        &1u32.to_be_bytes(),
        ok,
        "generation 1 is now active",
    );
    let used1 = carrier.length + notes.length;
    c.step(
        "GET STATUS",
        &cmd::get_status(),
        &status(1, used1, 2, 5, 0x07),
        ok,
        "generation 1, 2 records; both passcodes set, pairing verified",
    );

    // Incremental backup: notes.txt removed locally, ui.conf added, carrier.sb unchanged.
    let page1 = ManifestPage {
        generation: 1,
        total: 2,
        entries: vec![carrier.clone(), notes.clone()],
    };
    c.step(
        "GET MANIFEST",
        &cmd::get_manifest(0, 256),
        &page1.encode(),
        ok,
        "generation 1, 2 records, both in this page (card table order)",
    );
    c.step(
        "BEGIN SESSION",
        &cmd::begin_session(SessionKind::Incremental { base_generation: 1 }),
        &[],
        ok,
        "incremental session on generation 1: staging starts as its copy",
    );
    c.step(
        "DELETE RECORD",
        &cmd::delete_record(&notes.id()),
        &[],
        ok,
        "user-data/notes.txt no longer on the device",
    );
    c.step(
        "BEGIN RECORD",
        &cmd::begin_record(&ui),
        &[],
        ok,
        "preferences/ui.conf: 300 bytes",
    );
    for chunk in write_plan(ui.length, &transport)? {
        let apdus = cmd::write_chunk(&chunk, &ui_data)?;
        let n = apdus.len();
        for (i, apdu) in apdus.iter().enumerate() {
            let note = if i + 1 < n {
                format!(
                    "chain segment {} of {n} (CLA 90): offset 0 and record bytes 0..251",
                    i + 1
                )
            } else {
                "last chain segment (CLA 80): record bytes 251..300".to_owned()
            };
            c.step("WRITE DATA", apdu, &[], ok, &note);
        }
    }
    c.step("END RECORD", &cmd::end_record(), &[], ok, "record staged");
    c.step(
        "COMMIT",
        &cmd::commit(),
        &2u32.to_be_bytes(),
        ok,
        "generation 2 is now active",
    );
    let page2 = ManifestPage {
        generation: 2,
        total: 2,
        entries: vec![carrier.clone(), ui.clone()],
    };
    c.step(
        "GET MANIFEST",
        &cmd::get_manifest(0, 256),
        &page2.encode(),
        ok,
        "carrier.sb kept its place, notes.txt gone, ui.conf appended",
    );

    // Read back.
    let ui_id = ui.id();
    let first = read_plan(ui.length, &transport)?;
    if let Some(chunk) = first.first() {
        c.step(
            "READ DATA",
            &cmd::read_chunk(&ui_id, chunk),
            &[],
            0x6982,
            "reprovisioning passcode not verified: no data",
        );
    }
    c.step(
        "VERIFY",
        &cmd::verify(Passcode::Reprovisioning, REPROVISIONING)?,
        &[],
        ok,
        "reprovisioning passcode verified",
    );
    for chunk in &first {
        let range = usize::try_from(chunk.offset).unwrap_or(0)
            ..usize::try_from(chunk.offset + chunk.len).unwrap_or(0);
        c.step(
            "READ DATA",
            &cmd::read_chunk(&ui_id, chunk),
            ui_data.get(range).unwrap_or_default(),
            ok,
            &format!(
                "record bytes {}..{}: Le {:02X} asks for exactly {} bytes",
                chunk.offset,
                chunk.offset + chunk.len,
                chunk.len % 256,
                chunk.len
            ),
        );
    }

    let digest2 = cmd::ManifestDigest {
        generation: 2,
        count: 2,
        digest: super::manifest::table_digest(&page2.entries),
    };
    c.step(
        "GET MANIFEST DIGEST",
        &cmd::get_manifest_digest(),
        &digest2.encode(),
        ok,
        "generation 2, 2 records, SHA-256 of the entries of step 25 (a kept copy matches)",
    );

    // Revision 2: records packed into WRITE RECORDS, verified COMMIT.
    let hello_data = b"hello\n".to_vec();
    let hello = record(Category::Other, "hello.txt", &hello_data)?;
    let packed = cmd::write_records([
        (&notes, notes_data.as_slice()),
        (&hello, hello_data.as_slice()),
    ])?;
    let table3 = [carrier.clone(), ui.clone(), notes.clone(), hello.clone()];
    let incremental2 = SessionKind::Incremental { base_generation: 2 };
    c.step(
        "BEGIN SESSION",
        &cmd::begin_session(incremental2),
        &[],
        ok,
        "incremental session on generation 2",
    );
    c.step(
        "WRITE RECORDS",
        &packed,
        &[],
        ok,
        "user-data/notes.txt (9 bytes) and other/hello.txt (6 bytes) in one APDU: entry, bytes, entry, bytes",
    );
    c.step(
        "COMMIT",
        &cmd::commit_verified(&digest2.digest),
        &[],
        cmd::SW_TABLE_MISMATCH,
        "verified COMMIT expecting generation 2's table: the staging table differs, nothing is committed and the session ends",
    );
    c.step(
        "BEGIN SESSION",
        &cmd::begin_session(incremental2),
        &[],
        ok,
        "generation 2 is still active: a new session on it",
    );
    c.step(
        "WRITE RECORDS",
        &packed,
        &[],
        ok,
        "the same two records again",
    );
    c.step(
        "COMMIT",
        &cmd::commit_verified(&super::manifest::table_digest(&table3)),
        &3u32.to_be_bytes(),
        ok,
        "verified COMMIT expecting carrier.sb, ui.conf, notes.txt, hello.txt: generation 3",
    );
    let digest3 = cmd::ManifestDigest {
        generation: 3,
        count: 4,
        digest: super::manifest::table_digest(&table3),
    };
    c.step(
        "GET MANIFEST DIGEST",
        &cmd::get_manifest_digest(),
        &digest3.encode(),
        ok,
        "generation 3, 4 records, the digest COMMIT was given",
    );

    let records = |generation: u32, list: &[(&ManifestEntry, &Vec<u8>)]| -> Vec<Value> {
        list.iter()
            .map(|(e, d)| {
                json!({
                    "generation": generation,
                    "category": e.category.folder_name(),
                    "name": e.name.as_str(),
                    "data": hex::encode_upper(d),
                    "sha256": hex::encode_upper(e.digest),
                })
            })
            .collect()
    };
    let mut all = records(1, &[(&carrier, &carrier_data), (&notes, &notes_data)]);
    all.extend(records(2, &[(&carrier, &carrier_data), (&ui, &ui_data)]));
    all.extend(records(
        3,
        &[
            (&carrier, &carrier_data),
            (&ui, &ui_data),
            (&notes, &notes_data),
            (&hello, &hello_data),
        ],
    ));
    Ok(json!({
        "description": "backup-store worked example: passcodes, full backup, incremental backup with a chained record, read-back, packed records with a verified COMMIT",
        "source": "simkit_core::backup::worked_example(); applet-spec/backup-store.md section 9",
        "aid": hex::encode_upper(cmd::AID),
        "install_params": hex::encode_upper(params.encode()),
        "transport": "short APDUs only",
        "passcodes": { "pairing": hex::encode_upper(PAIRING), "reprovisioning": hex::encode_upper(REPROVISIONING) },
        "records": all,
        "steps": c.steps,
    }))
}
