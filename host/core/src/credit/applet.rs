//! The credit-module applet at the APDU level, as pure code: [`process`] takes a command APDU and
//! answers exactly what a conforming card answers (applet-spec/credit-module.md §4), by driving
//! the [`Module`] state machine.
//!
//! It is the reference the Java applet is checked against (the worked examples in
//! `applet-spec/vectors/credit-module.json` are produced by it), and a stand-in card for host
//! tests that need no simulator. It owns only the APDU framing rules — CLA, INS, P1/P2, Lc — and
//! must not hold protocol rules of its own: those live in [`Module`].
//!
//! Order of checks (spec §4): SELECT; CLA (`6E00`); INS (`6D00`); P1-P2 (`6A86`); lifecycle
//! (`6985` / `9C08`, inside the module); Lc (`6700`); then the command's own checks.

use crate::apdu::{Command, Response};
use crate::credit::commands::{
    APPLET_AID, CLA, CLA_ISO, INS_APPLY_GRANT, INS_APPLY_LIMIT_UPDATE, INS_APPLY_PROVISIONAL_ACK,
    INS_DEBIT, INS_GET_FRAUD_LOG, INS_GET_LAST_COMPLETION, INS_GET_SERVER_ADDRESS, INS_GET_STATUS,
    INS_INITIATE_RELOAD, INS_LOCK, INS_PERSONALISE, INS_SELECT,
};
use crate::credit::module::{Lifecycle, Module, ModuleError};
use crate::status::Sw;

/// Answers one command APDU the way the credit-module applet does.
pub fn process(module: &mut Module, cmd: &Command) -> Response {
    match dispatch(module, cmd) {
        Ok(data) => Response::new(data, Sw::from_u16(0x9000)),
        Err(sw) => Response::new(Vec::new(), sw),
    }
}

fn dispatch(module: &mut Module, cmd: &Command) -> Result<Vec<u8>, Sw> {
    if cmd.cla == CLA_ISO && cmd.ins == INS_SELECT {
        return if cmd.p1 == 0x04 && cmd.p2 == 0x00 && cmd.data == APPLET_AID {
            Ok(Vec::new())
        } else {
            Err(Sw::from_u16(0x6A82))
        };
    }
    if cmd.cla != CLA {
        return Err(Sw::from_u16(0x6E00));
    }
    let known = [
        INS_GET_STATUS,
        INS_GET_SERVER_ADDRESS,
        INS_INITIATE_RELOAD,
        INS_APPLY_GRANT,
        INS_APPLY_PROVISIONAL_ACK,
        INS_GET_LAST_COMPLETION,
        INS_DEBIT,
        INS_APPLY_LIMIT_UPDATE,
        INS_GET_FRAUD_LOG,
        INS_PERSONALISE,
        INS_LOCK,
    ];
    if !known.contains(&cmd.ins) {
        return Err(Sw::from_u16(0x6D00));
    }
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Sw::from_u16(0x6A86));
    }
    let sw = |e: ModuleError| e.sw();
    match cmd.ins {
        INS_GET_STATUS => no_data(cmd).map(|()| module.status().to_bytes().to_vec()),
        INS_GET_SERVER_ADDRESS => no_data(cmd).map(|()| module.server_address().to_vec()),
        INS_GET_FRAUD_LOG => no_data(cmd).map(|()| module.fraud_log()),
        INS_GET_LAST_COMPLETION => {
            if module.state().lifecycle == Lifecycle::Personalisation {
                return Err(Sw::from_u16(0x6985));
            }
            no_data(cmd)?;
            module.last_completion().map(|a| a.to_vec()).map_err(sw)
        }
        INS_INITIATE_RELOAD => {
            // Gate first so a wrong state wins over a wrong length, as on the card.
            module.require_operational().map_err(sw)?;
            let r = u32_data(cmd)?;
            module.initiate_reload(r).map(|m| m.to_vec()).map_err(sw)
        }
        INS_DEBIT => {
            module.require_operational().map_err(sw)?;
            let a = u32_data(cmd)?;
            module
                .debit(a)
                .map(|b| b.to_be_bytes().to_vec())
                .map_err(sw)
        }
        INS_APPLY_GRANT => module
            .apply_grant(&cmd.data)
            .map(|m| m.to_vec())
            .map_err(sw),
        INS_APPLY_PROVISIONAL_ACK => module
            .apply_provisional(&cmd.data)
            .map(|()| Vec::new())
            .map_err(sw),
        INS_APPLY_LIMIT_UPDATE => module
            .apply_limit_update(&cmd.data)
            .map(|()| Vec::new())
            .map_err(sw),
        INS_PERSONALISE => module
            .personalise(&cmd.data)
            .map(|()| Vec::new())
            .map_err(sw),
        INS_LOCK => {
            module.require_personalisation().map_err(sw)?;
            no_data(cmd)?;
            module.lock().map(|()| Vec::new()).map_err(sw)
        }
        _ => Err(Sw::from_u16(0x6D00)),
    }
}

fn no_data(cmd: &Command) -> Result<(), Sw> {
    if cmd.data.is_empty() {
        Ok(())
    } else {
        Err(Sw::from_u16(0x6700))
    }
}

fn u32_data(cmd: &Command) -> Result<u32, Sw> {
    let bytes: [u8; 4] = cmd
        .data
        .as_slice()
        .try_into()
        .map_err(|_| Sw::from_u16(0x6700))?;
    Ok(u32::from_be_bytes(bytes))
}
