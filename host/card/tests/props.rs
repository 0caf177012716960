//! Property tests: the channel, the credit client, the card-URI parser and the card host's
//! LIST_CARDS parser never panic, whatever a card or a user sends, and the channel's Le rule
//! holds for every answer it accepts.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io;

use proptest::prelude::*;
use simkit_card::credit::CreditClient;
use simkit_card::{Atr, Card, CardError, CardUri, Channel};
use simkit_core::apdu::Command;
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::status::Sw;

/// A card answering from a tape, whatever the command; a transport error when the tape ends.
struct Tape {
    answers: VecDeque<Vec<u8>>,
    atr: Atr,
}

impl Card for Tape {
    fn transmit_raw(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        self.answers
            .pop_front()
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "tape ended").into())
    }
    fn reset(&mut self) -> Result<Atr, CardError> {
        Ok(self.atr.clone())
    }
    fn atr(&self) -> &Atr {
        &self.atr
    }
}

/// Answers biased towards the status words the channel acts on.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..3),
        6 => (
            prop::collection::vec(any::<u8>(), 0..300),
            prop::sample::select(vec![0x90u8, 0x61, 0x6C, 0x69, 0x9C, 0x62]),
            prop::sample::select(vec![0x00u8, 0x01, 0x04, 0x10, 0x31, 0x82, 0xFF]),
        )
            .prop_map(|(mut d, sw1, sw2)| {
                d.extend_from_slice(&[sw1, sw2]);
                d
            }),
    ]
}

fn tape(answers: Vec<Vec<u8>>) -> Tape {
    Tape {
        answers: answers.into(),
        atr: Atr::new([0x3B, 0x00]),
    }
}

proptest! {
    #[test]
    fn channel_never_panics_and_keeps_le(
        answers in prop::collection::vec(answer(), 1..6),
        data_len in prop_oneof![0..20usize, 250..600usize],
        le in prop::option::of(prop_oneof![1..=300u32, Just(65_536u32)]),
        extended in any::<bool>(),
        raw in any::<bool>(),
    ) {
        let mut ch = Channel::new(tape(answers));
        ch.set_extended_length(extended).set_raw(raw);
        let mut cmd = Command::new(0x80, 0xCA, 0, 0).data(vec![0xAB; data_len]);
        cmd.le = le;
        if let Ok(resp) = ch.transmit(&cmd) {
            if !raw {
                prop_assert!(resp.data.len() <= le.unwrap_or(0) as usize);
                prop_assert!(!matches!(resp.sw, Sw::MoreAvailable(_)));
            }
        }
    }

    #[test]
    fn credit_client_never_panics(answers in prop::collection::vec(answer(), 1..4), which in 0..12u8) {
        let mut ch = Channel::new(tape(answers));
        let mut c = CreditClient::new(&mut ch);
        let _ = match which {
            0 => c.select().map(drop),
            1 => c.status().map(drop),
            2 => c.server_address().map(drop),
            3 => c.initiate_reload(10).map(drop),
            4 => c.apply_grant(&[0u8; 37]).map(drop),
            5 => c.apply_provisional_ack(&[0u8; 31]).map(drop),
            6 => c.last_completion().map(drop),
            7 => c.debit(1).map(drop),
            8 => c.apply_limit_update(&[0u8; 39]).map(drop),
            9 => c.fraud_log().map(drop),
            10 => c.personalise(&PersonalisationData::default()).map(drop),
            _ => c.lock().map(drop),
        };
    }

    #[test]
    fn card_uri_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<CardUri>();
    }

    #[test]
    fn card_uri_round_trips(host in "[a-z0-9.-]{1,20}", port in 1..=65535u16, index in any::<u8>()) {
        let uri = CardUri::JcardsimAt { host, port, index };
        prop_assert_eq!(uri.to_string().parse::<CardUri>().unwrap(), uri);
    }

    #[test]
    fn card_uri_prefixed_never_panics(rest in "\\PC{0,40}") {
        let _ = format!("jcardsim://{rest}").parse::<CardUri>();
        let _ = format!("pcsc:{rest}").parse::<CardUri>();
    }
}
