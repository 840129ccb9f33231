//! The admin API, on its own loopback-only listener: the cluster's members (list, add, remove)
//! and the fault switch of test clusters.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;

use crate::app::{Answer, App, error_answer, json_answer, stopped};
use crate::config::Role;
use crate::error::ApiError;
use crate::node::{MembershipChange, MembershipError};
use crate::routes::rejection_answer;

/// The admin listener's routes (see [`crate::routes::ROUTES`]).
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/admin/members"),
    ("POST", "/v1/admin/members"),
    ("DELETE", "/v1/admin/members/{id}"),
    ("GET", "/v1/admin/faults"),
    ("PUT", "/v1/admin/faults"),
    ("GET", "/v1/admin/openapi.json"),
];

/// The admin listener's OpenAPI document, served at `/v1/admin/openapi.json` on that listener
/// only (the public document does not list these routes: they are not on its port).
pub const ADMIN_OPENAPI: &str = include_str!("../../docs/openapi-admin.json");

/// The admin API's routes (membership), served on their own, loopback-only listener.
pub fn admin_routes(app: Arc<App>) -> impl Filter<Extract = (Answer,), Error = Infallible> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let list = warp::path!("v1" / "admin" / "members")
        .and(warp::get())
        .and(with_app.clone())
        .then(members);
    let add = warp::path!("v1" / "admin" / "members")
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with_app.clone())
        .then(add_member);
    let remove = warp::path!("v1" / "admin" / "members" / u64)
        .and(warp::delete())
        .and(with_app.clone())
        .then(remove_member);
    let get_faults = warp::path!("v1" / "admin" / "faults")
        .and(warp::get())
        .and(with_app.clone())
        .then(|app: Arc<App>| async move { faults(&app, None) });
    let set_faults = warp::path!("v1" / "admin" / "faults")
        .and(warp::put())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with_app)
        .then(|body: Bytes, app: Arc<App>| async move { faults(&app, Some(body)) });
    let openapi = warp::path!("v1" / "admin" / "openapi.json").and(warp::get()).map(|| {
        warp::http::Response::builder()
            .status(warp::http::StatusCode::OK)
            .header("content-type", "application/json")
            .body(Bytes::from_static(ADMIN_OPENAPI.as_bytes()))
            .expect("a valid response")
    });
    list.or(add)
        .unify()
        .or(openapi)
        .unify()
        .or(remove)
        .unify()
        .or(get_faults)
        .unify()
        .or(set_faults)
        .unify()
        .or(crate::routes::wrong_method(ADMIN_ROUTES))
        .unify()
        .recover(|rejection| async move { Ok::<_, Infallible>(rejection_answer(rejection)) })
        .unify()
}

async fn members(app: Arc<App>) -> Answer {
    match app.node.members().await {
        Some(members) => json_answer(
            StatusCode::OK,
            &json!({"voters": members.voters, "observers": members.observers}),
        ),
        None => error_answer(&stopped()),
    }
}

async fn add_member(body: Bytes, app: Arc<App>) -> Answer {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Add {
        id: u64,
        role: Role,
        raft: String,
    }
    let add: Add = match serde_json::from_slice(&body) {
        Ok(add) => add,
        Err(e) => return error_answer(&ApiError::bad_request("malformed_json", e.to_string())),
    };
    let change = match add.role {
        Role::Observer => MembershipChange::AddObserver { id: add.id, address: add.raft },
        Role::Voter => MembershipChange::AddVoter { id: add.id, address: add.raft },
    };
    change_membership(&app, change).await
}

/// `GET` (with no body) and `PUT /v1/admin/faults`: the raft peers this node is cut off from.
/// `{"cut_peers": [ID, ...]}` replaces the set; `[]` heals.
fn faults(app: &App, body: Option<Bytes>) -> Answer {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Set {
        cut_peers: Vec<u64>,
    }
    let Some(cuts) = &app.cuts else {
        return error_answer(&ApiError::new(
            StatusCode::FORBIDDEN,
            "fault_injection_off",
            "this node runs without fault_injection (set it in the config, or pass \
             --fault-injection, on test clusters only)",
        ));
    };
    if let Some(body) = body {
        match serde_json::from_slice::<Set>(&body) {
            Ok(set) => {
                tracing::warn!(cut_peers = ?set.cut_peers, "fault injection: raft links cut");
                cuts.set(set.cut_peers);
            }
            Err(e) => return error_answer(&ApiError::bad_request("malformed_json", e.to_string())),
        }
    }
    json_answer(
        StatusCode::OK,
        &json!({"cut_peers": cuts.get(), "dropped_messages": cuts.dropped()}),
    )
}

async fn remove_member(id: u64, app: Arc<App>) -> Answer {
    change_membership(&app, MembershipChange::Remove { id }).await
}

async fn change_membership(app: &App, change: MembershipChange) -> Answer {
    match app.node.change_membership(change).await {
        Ok(()) => json_answer(
            StatusCode::ACCEPTED,
            &json!({"proposed": true, "note": "watch GET /v1/admin/members for it to apply"}),
        ),
        Err(MembershipError::NotLeader { leader_hint }) => error_answer(
            &ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_leader",
                "membership changes go to the leader's admin API",
            )
            .with("leader_id", json!(leader_hint)),
        ),
        Err(MembershipError::Invalid(detail)) => {
            error_answer(&ApiError::bad_request("invalid_membership_change", detail))
        }
        Err(MembershipError::Busy) => error_answer(&ApiError::new(
            StatusCode::CONFLICT,
            "membership_change_in_progress",
            "another membership change is in progress; retry once it applied",
        )),
    }
}
