//! The credit-module builders of expressions: `request`, `grant`, `provisional`, `completion`,
//! `limit_update` and `personalise`. They read their named arguments and call the message
//! builders and the PERSONALISE TLV of `simkit-core`; they never compute a MAC or lay out a
//! message themselves.

use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{
    CompletionAck, GrantStatus, LimitUpdate, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::{DeclineReason, Limits, ModuleId, Tag};
use simkit_core::crypto::{Profile, SecretKey, derive_module_keys};

use super::ast::{Call, Vars};
use super::eval::{EvalError, crypto_error, eerr, fixed, profile_of, ranged, to_i32, to_u32};

impl Call {
    /// Profile, module id and the message key of a builder (`key=` or `master=` + role).
    fn builder_ctx(
        &self,
        vars: &Vars,
        grant_key: bool,
    ) -> Result<(Profile, ModuleId, SecretKey), EvalError> {
        let profile = profile_of(&self.req("profile")?.word(vars)?, &self.loc_of("profile"))?;
        let module: ModuleId = fixed(
            self.req("module")?.bytes(vars)?,
            "module",
            &self.loc_of("module"),
        )?;
        let key = match (self.named_arg("key"), self.named_arg("master")) {
            (Some(k), None) => SecretKey::new(&k.bytes(vars)?),
            (None, Some(m)) => {
                let master = SecretKey::new(&m.bytes(vars)?);
                let keys = derive_module_keys(profile, &master, &module)
                    .map_err(|e| eerr(m.loc(), e.to_string()))?;
                if grant_key { keys.grant } else { keys.request }
            }
            _ => {
                return Err(eerr(
                    &self.loc,
                    format!(
                        "{}(...) needs exactly one of key= (the module key) and master= (the master key)",
                        self.func.name()
                    ),
                ));
            }
        };
        Ok((profile, module, key))
    }

    fn tag_arg(&self, name: &str, vars: &Vars) -> Result<Tag, EvalError> {
        fixed(self.req(name)?.bytes(vars)?, name, &self.loc_of(name))
    }

    fn override_tag(&self, mut bytes: Vec<u8>, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        if let Some(t) = self.named_arg("tag") {
            let tag: Tag = fixed(t.bytes(vars)?, "tag", t.loc())?;
            let n = bytes.len().saturating_sub(tag.len());
            bytes.truncate(n);
            bytes.extend_from_slice(&tag);
        }
        Ok(bytes)
    }

    /// `request(...)`: a RELOAD REQUEST (module → server), tag by K_req.
    pub(super) fn request(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let crypto = crypto_error(&self.loc);
        let (profile, module, key) = self.builder_ctx(vars, false)?;
        let m = ReloadRequest::build(
            profile,
            module,
            to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
            to_u32(
                self.req_num("amount", vars)?,
                "amount",
                &self.loc_of("amount"),
            )?,
            to_i32(
                self.req_num("balance", vars)?,
                "balance",
                &self.loc_of("balance"),
            )?,
            &key,
        )
        .map_err(crypto)?;
        self.override_tag(m.to_bytes().to_vec(), vars)
    }

    /// `grant(...)`: a RELOAD GRANT, granted or declined, tag by K_grant.
    pub(super) fn grant(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let crypto = crypto_error(&self.loc);
        let (profile, module, key) = self.builder_ctx(vars, true)?;
        let status = match self
            .named_arg("status")
            .map(|s| s.word(vars))
            .transpose()?
            .as_deref()
        {
            None | Some("granted") => GrantStatus::Granted,
            Some("declined") => {
                let r = self.opt_num("reason", vars, 0)?;
                let reason = u8::try_from(r)
                    .ok()
                    .and_then(DeclineReason::from_code)
                    .ok_or_else(|| {
                        eerr(
                            &self.loc_of("reason"),
                            format!("reason {r} is not a decline reason (1..=5)"),
                        )
                    })?;
                GrantStatus::Declined(reason)
            }
            Some(other) => {
                return Err(eerr(
                    &self.loc_of("status"),
                    format!("status {other:?}: expected granted or declined"),
                ));
            }
        };
        let m = ReloadGrant::build(
            profile,
            module,
            to_u32(self.req_num("s", vars)?, "s", &self.loc_of("s"))?,
            status,
            to_u32(
                self.opt_num("amount", vars, 0)?,
                "amount",
                &self.loc_of("amount"),
            )?,
            self.tag_arg("req_tag", vars)?,
            &key,
        )
        .map_err(crypto)?;
        self.override_tag(m.to_bytes().to_vec(), vars)
    }

    /// `provisional(...)`: a PROVISIONAL ACK, tag by K_grant.
    pub(super) fn provisional(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let crypto = crypto_error(&self.loc);
        let (profile, module, key) = self.builder_ctx(vars, true)?;
        let m = ProvisionalAck::build(
            profile,
            module,
            to_u32(self.req_num("s", vars)?, "s", &self.loc_of("s"))?,
            self.tag_arg("req_tag", vars)?,
            &key,
        )
        .map_err(crypto)?;
        self.override_tag(m.to_bytes().to_vec(), vars)
    }

    /// `completion(...)`: a COMPLETION ACK, tag by K_req.
    pub(super) fn completion(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let crypto = crypto_error(&self.loc);
        let (profile, module, key) = self.builder_ctx(vars, false)?;
        let declined = self.opt_num("declined", vars, 0)?;
        if !(0..=1).contains(&declined) {
            return Err(eerr(&self.loc_of("declined"), "declined must be 0 or 1"));
        }
        let m = CompletionAck::build(
            profile,
            module,
            to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
            declined == 1,
            to_u32(
                self.opt_num("amount", vars, 0)?,
                "amount",
                &self.loc_of("amount"),
            )?,
            to_i32(
                self.req_num("balance", vars)?,
                "balance",
                &self.loc_of("balance"),
            )?,
            self.tag_arg("grant_tag", vars)?,
            &key,
        )
        .map_err(crypto)?;
        self.override_tag(m.to_bytes().to_vec(), vars)
    }

    /// `limit_update(...)`: a LIMIT UPDATE, tag by K_grant.
    pub(super) fn limit_update(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let crypto = crypto_error(&self.loc);
        let (profile, module, key) = self.builder_ctx(vars, true)?;
        let limits = self.limits(vars)?.ok_or_else(|| {
            eerr(
                &self.loc,
                "limit_update(...) needs min=, max=, upper= and credit_line=",
            )
        })?;
        let m = LimitUpdate::build(
            profile,
            module,
            to_u32(self.req_num("seq", vars)?, "seq", &self.loc_of("seq"))?,
            limits,
            &key,
        )
        .map_err(crypto)?;
        self.override_tag(m.to_bytes().to_vec(), vars)
    }

    fn limits(&self, vars: &Vars) -> Result<Option<Limits>, EvalError> {
        let names = ["min", "max", "upper", "credit_line"];
        let present = names.iter().filter(|n| self.named_arg(n).is_some()).count();
        if present == 0 {
            return Ok(None);
        }
        if present != names.len() {
            return Err(eerr(
                &self.loc,
                "limits need all of min=, max=, upper= and credit_line=",
            ));
        }
        Ok(Some(Limits {
            min_reload: to_u32(self.req_num("min", vars)?, "min", &self.loc_of("min"))?,
            max_reload: to_u32(self.req_num("max", vars)?, "max", &self.loc_of("max"))?,
            upper: to_i32(self.req_num("upper", vars)?, "upper", &self.loc_of("upper"))?,
            credit_line: to_i32(
                self.req_num("credit_line", vars)?,
                "credit_line",
                &self.loc_of("credit_line"),
            )?,
        }))
    }

    /// `personalise(...)`: the PERSONALISE TLV.
    pub(super) fn personalise(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let mut d = PersonalisationData::default();
        let profile = self
            .named_arg("profile")
            .map(|p| p.word(vars).and_then(|w| profile_of(&w, p.loc())))
            .transpose()?;
        d.profile = profile;
        let module: Option<ModuleId> = self
            .named_arg("module")
            .map(|m| m.bytes(vars).and_then(|b| fixed(b, "module", m.loc())))
            .transpose()?;
        d.module_id = module;
        if let Some(m) = self.named_arg("master") {
            let (Some(profile), Some(module)) = (profile, module) else {
                return Err(eerr(
                    m.loc(),
                    "personalise(master=...) needs profile= and module= to derive the keys",
                ));
            };
            let keys = derive_module_keys(profile, &SecretKey::new(&m.bytes(vars)?), &module)
                .map_err(|e| eerr(m.loc(), e.to_string()))?;
            d.k_req = Some(keys.request);
            d.k_grant = Some(keys.grant);
        }
        if let Some(k) = self.named_arg("k_req") {
            d.k_req = Some(SecretKey::new(&k.bytes(vars)?));
        }
        if let Some(k) = self.named_arg("k_grant") {
            d.k_grant = Some(SecretKey::new(&k.bytes(vars)?));
        }
        d.limits = self.limits(vars)?;
        match (self.named_arg("balance"), self.named_arg("n")) {
            (None, None) => {}
            (Some(_), Some(_)) => {
                d.initial = Some(InitialCounters {
                    balance: to_i32(
                        self.req_num("balance", vars)?,
                        "balance",
                        &self.loc_of("balance"),
                    )?,
                    n: to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
                });
            }
            _ => {
                return Err(eerr(
                    &self.loc,
                    "personalise(...) needs balance= and n= together",
                ));
            }
        }
        if self.named_arg("threshold").is_some() {
            let t = self.req_num("threshold", vars)?;
            let t = ranged(t, 0, 0xFFFF, "threshold", &self.loc_of("threshold"))?;
            d.threshold = Some(u16::try_from(t).unwrap_or(0));
        }
        if let Some(s) = self.named_arg("server") {
            d.server_address = Some(s.bytes(vars)?);
        }
        Ok(d.to_tlv())
    }
}
