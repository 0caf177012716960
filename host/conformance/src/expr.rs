//! Expressions that build bytes: hex, `$variables`, `"text"` and function calls, parsed from a
//! logical line and evaluated against the variables of a running test.
//!
//! The functions' cryptography and message layouts come from `simkit-core` (MACs, key
//! derivation, the credit-module message builders, the PERSONALISE TLV); this module only reads
//! arguments and calls them. It must never compute a MAC itself.
//!
//! By job: the types and the functions' signatures (`expr/ast.rs`), parsing
//! (`expr/parse.rs`), evaluation of the byte and number functions (`expr/eval.rs`), and the
//! credit-module message builders (`expr/credit.rs`).

mod ast;
mod credit;
mod eval;
mod parse;

pub use ast::{Arg, Call, Expr, Func, NumTerm, Term, Vars, WordArg};
pub use eval::{EvalError, lookup};
pub use parse::{parse_expr, parse_expr_line};

#[cfg(test)]
mod tests {
    use simkit_core::credit::message::{ReloadGrant, ReloadRequest};
    use simkit_core::crypto::{Profile, SecretKey, derive_module_keys, profile_tag};

    use super::*;
    use crate::source::LogicalLine;

    fn ev(text: &str) -> Result<Vec<u8>, String> {
        ev_with(text, &Vars::new())
    }

    fn ev_with(text: &str, vars: &Vars) -> Result<Vec<u8>, String> {
        let line = LogicalLine::single("t.apdu", 1, text);
        let e = parse_expr_line(&line).map_err(|e| e.to_string())?;
        e.eval(vars).map_err(|e| e.to_string())
    }

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn hex_strings_vars_and_numbers() {
        assert_eq!(ev("80 CA 0000").unwrap(), hx("80CA0000"));
        assert_eq!(ev("\"AB\" 00").unwrap(), hx("414200"));
        assert_eq!(
            ev("u8(255) u16(0x1234) u32(1)").unwrap(),
            hx("FF 1234 00000001")
        );
        assert_eq!(ev("i32(-5)").unwrap(), hx("FFFFFFFB"));
        assert_eq!(ev("i32(0xFFFFFFFF)").unwrap(), hx("FFFFFFFF"));
        let mut v = Vars::new();
        v.insert("n".into(), hx("00000007"));
        assert_eq!(
            ev_with("u32($n + 1) $n", &v).unwrap(),
            hx("00000008 00000007")
        );
        assert_eq!(ev_with("u8(0x10 - $n)", &v).unwrap(), hx("09"));
        assert_eq!(ev("len(010203) len16(\"\")").unwrap(), hx("03 0000"));
        assert_eq!(
            ev("xor(0F0F, FF00) slice(00112233, 1, 2)").unwrap(),
            hx("F00F 1122")
        );
        assert_eq!(ev("sha256(\"abc\")").unwrap()[..4], hx("ba7816bf")[..]);
    }

    #[test]
    fn errors_are_located_and_pinned() {
        assert_eq!(
            ev("80 CA0").unwrap_err(),
            "t.apdu:1:4: odd number of hex digits in \"CA0\""
        );
        assert_eq!(
            ev("80 zz").unwrap_err(),
            "t.apdu:1:4: \"zz\" is not hex (character 'z'); a function call needs `(` right after its name"
        );
        assert_eq!(
            ev("u8(256)").unwrap_err(),
            "t.apdu:1:1: u8 value 256 is out of range 0..=255"
        );
        assert_eq!(
            ev("00 $x").unwrap_err(),
            "t.apdu:1:4: variable $x is not set"
        );
        assert_eq!(
            ev("foo(1)").unwrap_err(),
            "t.apdu:1:1: unknown function \"foo\"; known: u8, u16, u32, i32, len, len16, sha256, xor, slice, mac, kdf, request, grant, provisional, completion, limit_update, personalise"
        );
        assert_eq!(
            ev("u8(1").unwrap_err(),
            "t.apdu:1:3: `(` is not closed (missing `)`)"
        );
        assert_eq!(
            ev("\"ab").unwrap_err(),
            "t.apdu:1:1: string is not closed (missing `\"`)"
        );
        assert_eq!(
            ev("grant(profile=aes-cmac, nope=1)").unwrap_err(),
            "t.apdu:1:25: grant(...) has no argument \"nope\"; it takes s, status, reason, amount, req_tag, profile, module, key, master, tag"
        );
        assert_eq!(
            ev("xor(00, 0000)").unwrap_err(),
            "t.apdu:1:1: xor needs equal lengths, got 1 and 2 bytes"
        );
        assert_eq!(
            ev("mac(aes_cmac, 00, 00)").unwrap_err(),
            "t.apdu:1:5: unknown crypto profile \"aes_cmac\"; expected one of aes-cmac, retail-mac, desx-cbc"
        );
        assert_eq!(
            ev("u8(1, 2)").unwrap_err(),
            "t.apdu:1:7: u8(...) takes 1 positional argument(s), got more"
        );
    }

    #[test]
    fn crypto_comes_from_core() {
        let key = [0x2Bu8; 16];
        let data = b"hello";
        let want = profile_tag(Profile::AesCmac, &SecretKey::new(&key), data).unwrap();
        let got = ev(&format!("mac(aes-cmac, {}, \"hello\")", hex::encode(key))).unwrap();
        assert_eq!(got, want.to_vec());

        let master = [0x11u8; 16];
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let keys = derive_module_keys(Profile::AesCmac, &SecretKey::new(&master), &id).unwrap();
        let both = ev(&format!(
            "kdf(aes-cmac, {}, 0102030405060708)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(&both[..16], keys.request.expose_secret());
        assert_eq!(&both[16..], keys.grant.expose_secret());
        let g = ev(&format!(
            "kdf(aes-cmac, {}, 0102030405060708, key=grant)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(g, keys.grant.expose_secret());

        // A request via master= equals core's build with the derived K_req.
        let r = ReloadRequest::build(Profile::AesCmac, id, 7, 100, -3, &keys.request).unwrap();
        let mut v = Vars::new();
        v.insert("p".into(), b"aes-cmac".to_vec());
        let got = ev_with(
            &format!(
                "request(profile=$p, master={}, module=0102030405060708, n=7, amount=100, balance=-3)",
                hex::encode(master)
            ),
            &v,
        )
        .unwrap();
        assert_eq!(got, r.to_bytes().to_vec());
        // tag= forges.
        let forged = ev(&format!(
            "request(profile=aes-cmac, master={}, module=0102030405060708, n=7, amount=100, balance=-3, tag=0000000000000000)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(forged[..23], r.to_bytes()[..23]);
        assert_eq!(forged[23..], [0u8; 8]);
    }

    #[test]
    fn grant_and_personalise_builders() {
        let master = hex::encode([0x11u8; 16]);
        let g = ev(&format!(
            "grant(profile=aes-cmac, master={master}, module=0102030405060708, s=8, amount=50, req_tag=0101010101010101)"
        ))
        .unwrap();
        assert_eq!(g.len(), ReloadGrant::LEN);
        let d = ev(&format!(
            "grant(profile=aes-cmac, master={master}, module=0102030405060708, s=8, status=declined, reason=3, req_tag=0101010101010101)"
        ))
        .unwrap();
        assert_eq!(d[15..17], [0x01, 0x03]);
        let p = ev(&format!(
            "personalise(profile=aes-cmac, module=0102030405060708, master={master}, min=1, max=1000, upper=5000, credit_line=0, threshold=3)"
        ))
        .unwrap();
        assert_eq!(p[..2], [0x81, 0x08]);
        assert_eq!(
            ev("personalise(balance=1)").unwrap_err(),
            "t.apdu:1:1: personalise(...) needs balance= and n= together"
        );
    }
}
