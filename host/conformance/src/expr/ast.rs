//! The expression tree and the functions' signatures: what the parser builds and the evaluator
//! walks. It holds no parsing and no evaluation; a new function is a [`Func`] variant, its name in
//! [`Func::ALL`], its parameters here, and its bytes in `eval.rs` (or `credit.rs` for a
//! credit-module message builder).

use std::collections::HashMap;

use crate::source::Loc;

/// Variables of a running test: name → bytes.
pub type Vars = HashMap<String, Vec<u8>>;

/// A parsed expression: terms whose bytes are concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The terms, in order.
    pub terms: Vec<Term>,
}

/// One term of an [`Expr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// Literal bytes (hex or a string).
    Bytes(Vec<u8>),
    /// `$name`.
    Var(String, Loc),
    /// `name(args)`.
    Call(Call),
}

/// A function call with its arguments parsed by the function's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function.
    pub func: Func,
    /// Where the call starts.
    pub loc: Loc,
    /// Positional arguments.
    pub args: Vec<Arg>,
    /// Named arguments.
    pub named: Vec<(String, Arg)>,
}

/// An argument, typed by the parameter it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Bytes: a full expression.
    Bytes(Expr, Loc),
    /// A number: `term (+|- term)*`, terms decimal, `0x..` or `$var`.
    Num(Vec<(i8, NumTerm)>, Loc),
    /// A name: a bare word or a `$var` holding it as text.
    Word(WordArg, Loc),
}

/// A term of a number argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumTerm {
    /// A literal.
    Lit(i128),
    /// `$name`, read big-endian unsigned.
    Var(String),
}

/// A name argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordArg {
    /// A bare word.
    Lit(String),
    /// `$name` holding UTF-8 text.
    Var(String),
}

/// The functions an expression may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `u8(n)`.
    U8,
    /// `u16(n)`.
    U16,
    /// `u32(n)`.
    U32,
    /// `i32(n)`.
    I32,
    /// `len(expr)`.
    Len,
    /// `len16(expr)`.
    Len16,
    /// `sha256(expr)`.
    Sha256,
    /// `xor(a, b)`.
    Xor,
    /// `slice(expr, start, len)`.
    Slice,
    /// `mac(profile, key, data)`.
    Mac,
    /// `kdf(profile, master, module_id[, key=req|grant])`.
    Kdf,
    /// `request(...)`.
    Request,
    /// `grant(...)`.
    Grant,
    /// `provisional(...)`.
    Provisional,
    /// `completion(...)`.
    Completion,
    /// `limit_update(...)`.
    LimitUpdate,
    /// `personalise(...)`.
    Personalise,
}

/// The kind of value a parameter takes; it decides how the argument text is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bytes,
    Num,
    Word,
}

/// Named parameters every credit-message builder takes.
const BUILDER_COMMON: &[(&str, Kind)] = &[
    ("profile", Kind::Word),
    ("module", Kind::Bytes),
    ("key", Kind::Bytes),
    ("master", Kind::Bytes),
    ("tag", Kind::Bytes),
];

impl Func {
    pub(super) const ALL: [(&'static str, Func); 17] = [
        ("u8", Func::U8),
        ("u16", Func::U16),
        ("u32", Func::U32),
        ("i32", Func::I32),
        ("len", Func::Len),
        ("len16", Func::Len16),
        ("sha256", Func::Sha256),
        ("xor", Func::Xor),
        ("slice", Func::Slice),
        ("mac", Func::Mac),
        ("kdf", Func::Kdf),
        ("request", Func::Request),
        ("grant", Func::Grant),
        ("provisional", Func::Provisional),
        ("completion", Func::Completion),
        ("limit_update", Func::LimitUpdate),
        ("personalise", Func::Personalise),
    ];

    pub(super) fn from_name(name: &str) -> Option<Func> {
        Func::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The function's name in scripts.
    pub fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    pub(super) fn positional(self) -> &'static [Kind] {
        match self {
            Func::U8 | Func::U16 | Func::U32 | Func::I32 => &[Kind::Num],
            Func::Len | Func::Len16 | Func::Sha256 => &[Kind::Bytes],
            Func::Xor => &[Kind::Bytes, Kind::Bytes],
            Func::Slice => &[Kind::Bytes, Kind::Num, Kind::Num],
            Func::Mac | Func::Kdf => &[Kind::Word, Kind::Bytes, Kind::Bytes],
            _ => &[],
        }
    }

    fn named(self) -> &'static [(&'static str, Kind)] {
        match self {
            Func::Kdf => &[("key", Kind::Word)],
            Func::Request => &[
                ("n", Kind::Num),
                ("amount", Kind::Num),
                ("balance", Kind::Num),
            ],
            Func::Grant => &[
                ("s", Kind::Num),
                ("status", Kind::Word),
                ("reason", Kind::Num),
                ("amount", Kind::Num),
                ("req_tag", Kind::Bytes),
            ],
            Func::Provisional => &[("s", Kind::Num), ("req_tag", Kind::Bytes)],
            Func::Completion => &[
                ("n", Kind::Num),
                ("declined", Kind::Num),
                ("amount", Kind::Num),
                ("balance", Kind::Num),
                ("grant_tag", Kind::Bytes),
            ],
            Func::LimitUpdate => &[
                ("seq", Kind::Num),
                ("min", Kind::Num),
                ("max", Kind::Num),
                ("upper", Kind::Num),
                ("credit_line", Kind::Num),
            ],
            Func::Personalise => &[
                ("profile", Kind::Word),
                ("module", Kind::Bytes),
                ("master", Kind::Bytes),
                ("k_req", Kind::Bytes),
                ("k_grant", Kind::Bytes),
                ("min", Kind::Num),
                ("max", Kind::Num),
                ("upper", Kind::Num),
                ("credit_line", Kind::Num),
                ("balance", Kind::Num),
                ("n", Kind::Num),
                ("threshold", Kind::Num),
                ("server", Kind::Bytes),
            ],
            _ => &[],
        }
    }

    fn is_builder(self) -> bool {
        matches!(
            self,
            Func::Request | Func::Grant | Func::Provisional | Func::Completion | Func::LimitUpdate
        )
    }

    pub(super) fn named_kind(self, name: &str) -> Option<Kind> {
        let own = self
            .named()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k);
        own.or_else(|| {
            self.is_builder()
                .then(|| {
                    BUILDER_COMMON
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, k)| *k)
                })
                .flatten()
        })
    }

    pub(super) fn named_list(self) -> String {
        let mut names: Vec<&str> = self.named().iter().map(|(n, _)| *n).collect();
        if self.is_builder() {
            names.extend(BUILDER_COMMON.iter().map(|(n, _)| *n));
        }
        names.join(", ")
    }
}
