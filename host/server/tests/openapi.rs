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
