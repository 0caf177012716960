//! Evaluation: an [`Expr`] into bytes against a test's variables. This file holds the
//! number/byte functions and the argument readers; the credit-module message builders are in
//! `credit.rs`. Cryptography comes from `simkit-core`; nothing here computes a MAC itself.

use simkit_core::credit::ModuleId;
use simkit_core::crypto::{CryptoError, Profile, SecretKey, derive_module_keys, profile_tag};

use super::ast::{Arg, Call, Expr, Func, NumTerm, Term, Vars, WordArg};
use crate::source::Loc;

/// Why an expression could not be evaluated (unset variable, value out of range, bad key...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct EvalError {
    /// Where.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

pub(super) fn eerr(loc: &Loc, message: impl Into<String>) -> EvalError {
    EvalError {
        loc: loc.clone(),
        message: message.into(),
    }
}

/// Looks up a variable.
///
/// # Errors
/// The variable is not set.
pub fn lookup<'v>(vars: &'v Vars, name: &str, loc: &Loc) -> Result<&'v [u8], EvalError> {
    vars.get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| eerr(loc, format!("variable ${name} is not set")))
}

impl Expr {
    /// The bytes of the expression.
    ///
    /// # Errors
    /// Unset variables, out-of-range numbers, wrong key lengths, all located.
    pub fn eval(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let mut out = Vec::new();
        for t in &self.terms {
            match t {
                Term::Bytes(b) => out.extend_from_slice(b),
                Term::Var(name, loc) => out.extend_from_slice(lookup(vars, name, loc)?),
                Term::Call(c) => out.extend_from_slice(&c.eval(vars)?),
            }
        }
        Ok(out)
    }
}

impl Arg {
    pub(super) fn loc(&self) -> &Loc {
        match self {
            Arg::Bytes(_, l) | Arg::Num(_, l) | Arg::Word(_, l) => l,
        }
    }

    pub(super) fn bytes(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        match self {
            Arg::Bytes(e, _) => e.eval(vars),
            other => Err(eerr(other.loc(), "expected bytes")),
        }
    }

    pub(super) fn num(&self, vars: &Vars) -> Result<i128, EvalError> {
        let Arg::Num(terms, loc) = self else {
            return Err(eerr(self.loc(), "expected a number"));
        };
        let mut total: i128 = 0;
        for (sign, t) in terms {
            let v = match t {
                NumTerm::Lit(v) => *v,
                NumTerm::Var(name) => {
                    let b = lookup(vars, name, loc)?;
                    if b.len() > 8 {
                        return Err(eerr(
                            loc,
                            format!(
                                "${name} has {} bytes; a number can be read from at most 8",
                                b.len()
                            ),
                        ));
                    }
                    b.iter().fold(0i128, |acc, x| (acc << 8) | i128::from(*x))
                }
            };
            total = total.saturating_add(i128::from(*sign).saturating_mul(v));
        }
        Ok(total)
    }

    pub(super) fn word(&self, vars: &Vars) -> Result<String, EvalError> {
        match self {
            Arg::Word(WordArg::Lit(w), _) => Ok(w.clone()),
            Arg::Word(WordArg::Var(name), loc) => {
                let b = lookup(vars, name, loc)?;
                String::from_utf8(b.to_vec())
                    .map_err(|_| eerr(loc, format!("${name} does not hold text")))
            }
            other => Err(eerr(other.loc(), "expected a name")),
        }
    }
}

pub(super) fn ranged(
    v: i128,
    min: i128,
    max: i128,
    what: &str,
    loc: &Loc,
) -> Result<i128, EvalError> {
    if v < min || v > max {
        Err(eerr(
            loc,
            format!("{what} {v} is out of range {min}..={max}"),
        ))
    } else {
        Ok(v)
    }
}

pub(super) fn to_u32(v: i128, what: &str, loc: &Loc) -> Result<u32, EvalError> {
    let v = ranged(v, 0, i128::from(u32::MAX), what, loc)?;
    u32::try_from(v).map_err(|_| eerr(loc, format!("{what} does not fit u32")))
}

pub(super) fn to_i32(v: i128, what: &str, loc: &Loc) -> Result<i32, EvalError> {
    let v = ranged(v, i128::from(i32::MIN), i128::from(u32::MAX), what, loc)?;
    // Values above i32::MAX are a bit pattern (a captured 4-byte field read as unsigned).
    let bits = if v > i128::from(i32::MAX) {
        v - (1i128 << 32)
    } else {
        v
    };
    i32::try_from(bits).map_err(|_| eerr(loc, format!("{what} does not fit i32")))
}

pub(super) fn fixed<const N: usize>(
    b: Vec<u8>,
    what: &str,
    loc: &Loc,
) -> Result<[u8; N], EvalError> {
    let got = b.len();
    b.try_into()
        .map_err(|_| eerr(loc, format!("{what} must be {N} bytes, got {got}")))
}

pub(super) fn profile_of(word: &str, loc: &Loc) -> Result<Profile, EvalError> {
    word.parse::<Profile>()
        .map_err(|e| eerr(loc, e.to_string()))
}

impl Call {
    pub(super) fn named_arg(&self, name: &str) -> Option<&Arg> {
        self.named.iter().find(|(k, _)| k == name).map(|(_, a)| a)
    }

    pub(super) fn req(&self, name: &str) -> Result<&Arg, EvalError> {
        self.named_arg(name).ok_or_else(|| {
            eerr(
                &self.loc,
                format!("{}(...) needs the argument {name}=", self.func.name()),
            )
        })
    }

    pub(super) fn req_num(&self, name: &str, vars: &Vars) -> Result<i128, EvalError> {
        self.req(name)?.num(vars)
    }

    pub(super) fn opt_num(
        &self,
        name: &str,
        vars: &Vars,
        default: i128,
    ) -> Result<i128, EvalError> {
        self.named_arg(name).map_or(Ok(default), |a| a.num(vars))
    }

    pub(super) fn pos(&self, i: usize) -> Result<&Arg, EvalError> {
        self.args
            .get(i)
            .ok_or_else(|| eerr(&self.loc, "missing argument"))
    }

    pub(super) fn loc_of(&self, name: &str) -> Loc {
        self.named_arg(name)
            .map_or_else(|| self.loc.clone(), |a| a.loc().clone())
    }

    pub(super) fn eval(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let loc = &self.loc;
        let crypto = crypto_error(loc);
        match self.func {
            Func::U8 => {
                let v = ranged(self.pos(0)?.num(vars)?, 0, 0xFF, "u8 value", loc)?;
                Ok(vec![u8::try_from(v).unwrap_or(0)])
            }
            Func::U16 => {
                let v = ranged(self.pos(0)?.num(vars)?, 0, 0xFFFF, "u16 value", loc)?;
                Ok(u16::try_from(v).unwrap_or(0).to_be_bytes().to_vec())
            }
            Func::U32 => Ok(to_u32(self.pos(0)?.num(vars)?, "u32 value", loc)?
                .to_be_bytes()
                .to_vec()),
            Func::I32 => Ok(to_i32(self.pos(0)?.num(vars)?, "i32 value", loc)?
                .to_be_bytes()
                .to_vec()),
            Func::Len => {
                let n = self.pos(0)?.bytes(vars)?.len();
                let n = u8::try_from(n)
                    .map_err(|_| eerr(loc, format!("len: {n} bytes do not fit one byte")))?;
                Ok(vec![n])
            }
            Func::Len16 => {
                let n = self.pos(0)?.bytes(vars)?.len();
                let n = u16::try_from(n)
                    .map_err(|_| eerr(loc, format!("len16: {n} bytes do not fit two bytes")))?;
                Ok(n.to_be_bytes().to_vec())
            }
            Func::Sha256 => {
                use sha2::Digest;
                Ok(sha2::Sha256::digest(self.pos(0)?.bytes(vars)?).to_vec())
            }
            Func::Xor => {
                let a = self.pos(0)?.bytes(vars)?;
                let b = self.pos(1)?.bytes(vars)?;
                if a.len() != b.len() {
                    return Err(eerr(
                        loc,
                        format!(
                            "xor needs equal lengths, got {} and {} bytes",
                            a.len(),
                            b.len()
                        ),
                    ));
                }
                Ok(a.iter().zip(&b).map(|(x, y)| x ^ y).collect())
            }
            Func::Slice => {
                let b = self.pos(0)?.bytes(vars)?;
                let start = self.pos(1)?.num(vars)?;
                let len = self.pos(2)?.num(vars)?;
                let total = b.len();
                usize::try_from(start)
                    .ok()
                    .zip(usize::try_from(len).ok())
                    .and_then(|(s, l)| b.get(s..s.checked_add(l)?))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        eerr(
                            loc,
                            format!("slice({start}, {len}) is outside the {total} bytes given"),
                        )
                    })
            }
            Func::Mac => {
                let p = self.pos(0)?;
                let profile = profile_of(&p.word(vars)?, p.loc())?;
                let key = SecretKey::new(&self.pos(1)?.bytes(vars)?);
                let data = self.pos(2)?.bytes(vars)?;
                Ok(profile_tag(profile, &key, &data).map_err(crypto)?.to_vec())
            }
            Func::Kdf => {
                let p = self.pos(0)?;
                let profile = profile_of(&p.word(vars)?, p.loc())?;
                let master = SecretKey::new(&self.pos(1)?.bytes(vars)?);
                let id: ModuleId =
                    fixed(self.pos(2)?.bytes(vars)?, "module id", self.pos(2)?.loc())?;
                let keys = derive_module_keys(profile, &master, &id).map_err(crypto)?;
                match self.named_arg("key").map(|k| k.word(vars)).transpose()? {
                    None => {
                        let mut out = keys.request.expose_secret().to_vec();
                        out.extend_from_slice(keys.grant.expose_secret());
                        Ok(out)
                    }
                    Some(w) if w == "req" || w == "request" => {
                        Ok(keys.request.expose_secret().to_vec())
                    }
                    Some(w) if w == "grant" => Ok(keys.grant.expose_secret().to_vec()),
                    Some(w) => Err(eerr(
                        &self.loc_of("key"),
                        format!("kdf key={w:?}: expected req or grant"),
                    )),
                }
            }
            Func::Request => self.request(vars),
            Func::Grant => self.grant(vars),
            Func::Provisional => self.provisional(vars),
            Func::Completion => self.completion(vars),
            Func::LimitUpdate => self.limit_update(vars),
            Func::Personalise => self.personalise(vars),
        }
    }
}

/// A core cryptography error as an evaluation error at `loc`.
pub(super) fn crypto_error(loc: &Loc) -> impl Fn(CryptoError) -> EvalError + '_ {
    move |e| eerr(loc, e.to_string())
}
