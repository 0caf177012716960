//! `applet-spec/openapi.json` and the router agree: every route the router registers is in the
//! document with the same methods, every documented operation reaches a handler, and the
//! document is what `GET /openapi.json` serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use simkit_core::vectors::example_master;
use simkit_server::{AppState, SoftwareKey, Store, router};
use tower::ServiceExt;

const API_SOURCE: &str = include_str!("../src/api.rs");

/// (path, method) pairs registered in `router()`: its `.route("PATH", get(..).post(..))` calls.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let start = API_SOURCE
        .find("Router::new()")
        .expect("router() builds a Router");
    let end = start + API_SOURCE[start..].find(".with_state").expect("with_state");
    let mut out = BTreeSet::new();
    for call in API_SOURCE[start..end].split(".route(").skip(1) {
        let path = call.split('"').nth(1).expect("a quoted path");
        let methods = call.split_once(',').expect("a method router").1;
        for m in ["get", "post", "put", "delete", "patch"] {
            let needle_a = format!(" {m}(");
            let needle_b = format!(".{m}(");
            if methods.contains(&needle_a) || methods.contains(&needle_b) {
                out.insert((path.to_owned(), m.to_owned()));
            }
        }
    }
    assert!(out.len() >= 10, "parsed too few routes: {out:?}");
    out
}

fn routes_in_document(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            out.insert((path.clone(), m.clone()));
        }
    }
    out
}

fn document() -> Value {
    serde_json::from_str(simkit_server::api::OPENAPI).unwrap()
}

#[test]
fn document_is_openapi_3_1_with_error_shape_and_bearer_auth() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let err = &doc["components"]["schemas"]["Error"];
    assert_eq!(err["required"], serde_json::json!(["error", "code"]));
    let reload = &doc["paths"]["/v1/reload"]["post"];
    assert!(reload["requestBody"]["content"]["application/octet-stream"].is_object());
    for code in ["200", "400", "403", "404", "409", "423", "503"] {
        assert!(reload["responses"][code].is_object(), "reload lacks {code}");
    }
    // Every admin path (under /v1/modules, /v1/fraud, /v1/ledger, /v1/accounts) needs the bearer token.
    for ((path, method), item) in routes_in_document(&doc)
        .into_iter()
        .map(|(p, m)| ((p.clone(), m.clone()), doc["paths"][&p][&m].clone()))
    {
        let admin = ["/v1/modules", "/v1/fraud", "/v1/ledger", "/v1/accounts"]
            .iter()
            .any(|a| path.starts_with(a));
        assert_eq!(
            item["security"].is_array(),
            admin,
            "{method} {path}: security"
        );
        if admin {
            assert!(item["responses"]["401"].is_object(), "{method} {path}: 401");
        }
        // Every $ref points at a schema that exists.
        for r in refs(&item) {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{r}");
        }
    }
}

fn refs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(s)) => vec![s.clone()],
                _ => refs(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let source = routes_in_source();
    let documented = routes_in_document(&document());
    let undocumented: Vec<_> = source.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&source).collect();
    assert!(
        undocumented.is_empty(),
        "routes not in openapi.json: {undocumented:?}"
    );
    assert!(missing.is_empty(), "documented but not routed: {missing:?}");
}

#[tokio::test]
async fn documented_operations_reach_a_handler_and_the_document_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.sqlite"),
        Box::new(SoftwareKey::new(example_master(
            simkit_core::crypto::Profile::AesCmac,
        ))),
    )
    .unwrap();
    let app = router(AppState::new(store, Some("t".into())));
    for (path, method) in routes_in_document(&document()) {
        let uri = path.replace("{id}", "0102030405060708");
        let req = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        // The router's own answers for an unrouted path/method: 404 or 405 with no JSON body.
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(
            !(status == StatusCode::NOT_FOUND && body.is_empty()),
            "{method} {uri} is not routed"
        );
    }
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, document());
}

const SERVER_API: &str = include_str!("../../../applet-spec/server-api.md");

/// One row of server-api.md's "The registration record" table: (field path, JSON type, range).
/// A range is `None` ("—"), `Value(min, max)` or `Length(min, max)`.
#[derive(Debug, PartialEq)]
enum Range {
    None,
    Value(i128, i128),
    Length(u64, u64),
}

fn registration_table() -> Vec<(String, String, Range)> {
    let start = SERVER_API
        .find("#### The registration record")
        .expect("server-api.md has the registration record section");
    let mut rows = Vec::new();
    for line in SERVER_API[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let field = cells[1].trim_matches('`').to_owned();
        let range = cells[3];
        let range = if range == "—" {
            Range::None
        } else if let Some(r) = range.strip_prefix("length ") {
            let (a, b) = r.split_once(" ..= ").expect("length a ..= b");
            Range::Length(a.parse().unwrap(), b.parse().unwrap())
        } else {
            let (a, b) = range.split_once(" ..= ").expect("a ..= b");
            Range::Value(a.parse().unwrap(), b.parse().unwrap())
        };
        rows.push((field, cells[2].to_owned(), range));
    }
    assert!(rows.len() >= 10, "parsed too few rows: {rows:?}");
    rows
}

/// `v`, or the schema its `$ref` names.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            &doc["components"]["schemas"][name]
        }
        None => v,
    }
}

/// Every leaf field under `schema` as (dotted path, its schema), objects walked through.
fn leaves<'a>(doc: &'a Value, schema: &'a Value, prefix: &str, out: &mut Vec<(String, &'a Value)>) {
    let schema = deref(doc, schema);
    assert_eq!(
        schema["additionalProperties"],
        Value::Bool(false),
        "{prefix:?} allows unknown fields"
    );
    for (name, field) in schema["properties"].as_object().unwrap() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let field = deref(doc, field);
        if field["type"] == "object" {
            leaves(doc, field, &path, out);
        } else {
            out.push((path, field));
        }
    }
}

fn json_type(schema: &Value) -> String {
    if let Some(t) = schema["type"].as_str() {
        return t.to_owned();
    }
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    if schema["const"].is_string() || strings(&schema["enum"]) {
        return "string".to_owned();
    }
    panic!("no type in {schema}");
}

fn schema_range(path: &str, schema: &Value) -> Range {
    let int = |k: &str| {
        schema[k]
            .as_i64()
            .map(i128::from)
            .or(schema[k].as_u64().map(i128::from))
    };
    match (int("minimum"), int("maximum")) {
        (Some(a), Some(b)) => return Range::Value(a, b),
        (None, None) => {}
        other => panic!("{path}: only one of minimum/maximum: {other:?}"),
    }
    match (schema["minLength"].as_u64(), schema["maxLength"].as_u64()) {
        (Some(a), Some(b)) => Range::Length(a, b),
        (None, None) => Range::None,
        other => panic!("{path}: only one of minLength/maxLength: {other:?}"),
    }
}

/// server-api.md's registration table and openapi.json's `ImportBody` (with `Registration` and
/// `Limits`) name the same fields with the same types and ranges, and allow nothing else.
#[test]
fn the_registration_table_and_the_import_schema_agree() {
    let doc = document();
    let mut documented = Vec::new();
    leaves(
        &doc,
        &doc["components"]["schemas"]["ImportBody"],
        "",
        &mut documented,
    );
    let table = registration_table();
    let names = |v: Vec<&String>| v.into_iter().cloned().collect::<BTreeSet<String>>();
    assert_eq!(
        names(table.iter().map(|(f, _, _)| f).collect()),
        names(documented.iter().map(|(f, _)| f).collect()),
        "server-api.md's table and openapi.json name different fields"
    );
    for (field, ty, range) in &table {
        let schema = documented.iter().find(|(f, _)| f == field).unwrap().1;
        assert_eq!(&json_type(schema), ty, "{field}: type");
        assert_eq!(&schema_range(field, schema), range, "{field}: range");
    }
    // Every field of the record and of its limits is required.
    for name in ["Registration", "Limits"] {
        let s = &doc["components"]["schemas"][name];
        let required: BTreeSet<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: BTreeSet<&str> = s["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(required, all, "{name}: every field is required");
    }
}

/// The table names exactly the fields the code writes in a registration record.
#[test]
fn the_registration_table_names_the_fields_the_code_writes() {
    use simkit_core::credit::registration::Registration;
    use simkit_core::crypto::Profile;
    use simkit_core::vectors::EXAMPLE_LIMITS;
    let r = Registration::new(
        [1; 8],
        Profile::AesCmac,
        &example_master(Profile::AesCmac),
        0,
        0,
        EXAMPLE_LIMITS,
        3,
        String::new(),
    )
    .unwrap();
    let body = serde_json::json!({"registration": r, "account_id": "a", "initial_funds": 0});
    let mut written = BTreeSet::new();
    fn walk(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in v.as_object().unwrap() {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if v.is_object() {
                walk(v, &path, out);
            } else {
                out.insert(path);
            }
        }
    }
    walk(&body, "", &mut written);
    let table: BTreeSet<String> = registration_table()
        .into_iter()
        .map(|(f, _, _)| f)
        .collect();
    assert_eq!(written, table);
    // The limits the code enforces for account ids and server addresses are the table's.
    let row = |f: &str| {
        registration_table()
            .into_iter()
            .find(|(n, _, _)| n == f)
            .unwrap()
            .2
    };
    let max = u64::try_from(simkit_server::store::ACCOUNT_ID_MAX).unwrap();
    assert_eq!(row("account_id"), Range::Length(1, max));
    let max = u64::try_from(simkit_server::store::SERVER_ADDRESS_MAX).unwrap();
    assert_eq!(row("registration.server_address"), Range::Length(0, max));
}
