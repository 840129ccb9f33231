//! The live event stream, `GET /v1/events` (server-sent events): every block, and every
//! transaction the reader may see, as this replica applies them, from a height on.
//!
//! - `?from=H` starts at block `H` (default: the next block, i.e. live only); a reconnecting
//!   client's `Last-Event-ID` (`H` after a block, `H:I` after a transaction) resumes right after
//!   that event instead, so nothing is missed or repeated.
//! - Unsigned, the stream carries `block` events only (height, hash, time, transaction count:
//!   what `GET /v1/blocks` shows anyone). Signed ([`crate::auth`]), it also carries a `tx` event
//!   per transaction the reader may see: a regulator every one, another party those that involve
//!   it (`ledger::supervision::involved`: for a rejected transaction only its signer and the
//!   parties it names). `?party=ID` (a regulator's choice, or the reader itself) and
//!   `?kind=NAME` narrow the `tx` events to one involved party and one command. Only a
//!   regulator is told every party a transaction involves (`parties`).
//! - Every signed stream is in the access log ([`crate::access`]): once when it opens, and then
//!   each page of `tx` events before it is sent: a regulator's stream of one party's
//!   transactions as a read of every party they involve, a party's own stream as its own read
//!   (a regulator's whole feed only at open, as a read of everyone's data). A stream whose
//!   reads cannot be logged ends.
//! - Events of a block are sent together, its `tx` events first and then the `block` event, so a
//!   `block` event says the block is complete.
//! - The reader is authenticated when the stream opens, and the stream ends if the reader's
//!   key changes (`RotateKey`) while it is open. A comment line every 15 s keeps idle
//!   connections open through proxies and detects a gone client; the stream ends when the node
//!   shuts down.
//!
//! At most [`STREAMS_MAX`] streams are open at once per node, in three pools that do not share
//! slots: unsigned streams, streams signed by parties, streams signed by regulators (so that
//! neither a crowd of unsigned clients nor of parties can keep a regulator from its feed); and
//! at most [`STREAMS_PER_CLIENT_MAX`] per client in each (an address when unsigned, a party
//! when signed). Past a limit the answer is `503 too_many_streams`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use ledger::pb::{Role, TxBody};
use ledger::{StateStore, query, supervision};
use prost::Message;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use warp::Reply;
use warp::http::StatusCode;
use warp::sse::Event;

use crate::access::Read;
use crate::app::{App, StreamSlot};
pub use crate::app::{STREAMS_MAX, STREAMS_PER_CLIENT_MAX};
use crate::auth::{self, Access, Credentials, Reader};
use crate::error::ApiError;
use crate::listen::ClientAddress;
use crate::node::Consistency;

/// Most blocks one read of the state turns into events (the reads run on the replica's thread).
const BLOCKS_PER_READ: u64 = 16;
/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a stream starts: the first block, and within it the first transaction index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Block height.
    pub height: u64,
    /// Transactions of that block before this index were sent already.
    pub index: u32,
}

/// What a stream carries.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `?party=`: only transactions involving this party.
    pub party: Option<String>,
    /// `?kind=`: only this command.
    pub kind: Option<String>,
}

/// Parses `from`, `party`, `kind` and `Last-Event-ID`. `None` start means "the next block".
pub fn parse(
    query: &HashMap<String, String>,
    last_event_id: Option<&str>,
) -> Result<(Option<Start>, Filter), ApiError> {
    let bad = |message: &str| ApiError::bad_request("bad_query", message.to_owned());
    // `from=` is checked even when Last-Event-ID (a reconnect) overrides it.
    let from = match query.get("from") {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(height) => Some(Start { height: height.max(1), index: 0 }),
            Err(_) => return Err(bad("from is a block height")),
        },
    };
    let start = match last_event_id {
        Some(id) => {
            let malformed = || bad("Last-Event-ID is H or H:I, as the stream sent");
            let (height, index) = match id.split_once(':') {
                Some((height, index)) => {
                    (height.parse::<u64>(), Some(index.parse::<u32>().map_err(|_| malformed())?))
                }
                None => (id.parse::<u64>(), None),
            };
            let height = height.map_err(|_| malformed())?;
            Some(match index {
                // After transaction I of block H: the rest of block H.
                Some(index) => Start { height, index: index.saturating_add(1) },
                // After block H: the next block.
                None => Start { height: height.saturating_add(1), index: 0 },
            })
        }
        None => from,
    };
    let text = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
    let party = query.get("party").cloned();
    if party.as_deref().is_some_and(|p| ledger::machine::check_id("party", p).is_err()) {
        return Err(bad("party is a party id: 1 to 64 of A-Z a-z 0-9 . _ : -"));
    }
    Ok((start, Filter { party, kind: text("kind") }))
}

/// One event, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `block` or `tx`.
    pub name: &'static str,
    /// `H` or `H:I`.
    pub id: String,
    /// The JSON data.
    pub data: Value,
    /// For a `tx` event, the parties the transaction involves: whose data it shows, for the
    /// access log.
    pub owners: Vec<String>,
}

/// The events of blocks `start.height ..= last` (at most [`BLOCKS_PER_READ`] of them) that
/// `reader` may see, and the start of the next read.
pub fn events(
    state: &dyn StateStore,
    reader: Option<&Reader>,
    filter: &Filter,
    start: Start,
) -> Result<(Vec<Item>, Start), ledger::StoreError> {
    let tip = query::tip(state)?.map_or(0, |t| t.height);
    let mut items = Vec::new();
    let mut next = start;
    let last = tip.min(start.height.saturating_add(BLOCKS_PER_READ - 1));
    for height in start.height..=last {
        let Some(block) = query::block(state, height)? else { break };
        let header = block.header.clone().unwrap_or_default();
        if let Some(reader) = reader {
            let first = if height == start.height { start.index } else { 0 };
            for (index, (tx, result)) in block.txs.iter().zip(&block.results).enumerate() {
                let index = u32::try_from(index).expect("BLOCK_TXS_MAX fits in u32");
                if index < first {
                    continue;
                }
                let body = TxBody::decode(tx.body.as_slice()).ok();
                let parties = match &body {
                    Some(body) => supervision::involved(state, body, result.applied)?,
                    None => Vec::new(),
                };
                let kind = body
                    .as_ref()
                    .and_then(|b| b.command.as_ref())
                    .map_or("", ledger::tx::command_name);
                let sees = reader.role == Role::Regulator || parties.contains(&reader.party);
                let wanted = filter.party.as_ref().is_none_or(|p| parties.contains(p))
                    && filter.kind.as_ref().is_none_or(|k| k == kind);
                if !(sees && wanted) {
                    continue;
                }
                let mut data = crate::views::outcome_json(height, result);
                data["index"] = json!(index);
                data["time_ms"] = json!(header.time_ms);
                data["kind"] = json!(kind);
                data["signer"] = json!(body.as_ref().map(|b| b.signer.as_str()));
                // Who else a transaction involves is for regulators: a party knows its own
                // part, and the list would tell a carrier, say, who the buyer is.
                if reader.role == Role::Regulator {
                    data["parties"] = json!(parties);
                }
                let id = format!("{height}:{index}");
                items.push(Item { name: "tx", id, data, owners: parties });
            }
        }
        let hash = ledger::chain::header_hash(&header).map(hex::encode);
        items.push(Item {
            name: "block",
            id: height.to_string(),
            data: json!({
                "height": height,
                "block_hash": hash,
                "time_ms": header.time_ms,
                "tx_count": header.tx_count,
            }),
            owners: Vec::new(),
        });
        next = Start { height: height + 1, index: 0 };
    }
    Ok((items, next))
}

/// A stream's state between events.
struct Cursor {
    app: Arc<App>,
    reader: Option<Reader>,
    /// The reader's public key when the stream opened (empty for an unsigned stream).
    key: Arc<Vec<u8>>,
    filter: Arc<Filter>,
    next: Start,
    heights: watch::Receiver<u64>,
    queued: VecDeque<Item>,
    /// How the stream's `tx` events are logged as they are sent: `None` for an unsigned stream
    /// (no transactions) and a regulator's whole feed (logged once, at open, as everyone's).
    logged: Option<Logged>,
    _slot: StreamSlot,
}

/// The purpose and path a signed stream's reads are logged with.
struct Logged {
    purpose: Option<String>,
    path: String,
}

impl Cursor {
    /// The next event, waiting for blocks as needed; `None` when the node stops.
    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.queued.pop_front() {
                return Some(item);
            }
            // Wait until the replica has applied the next block.
            let wanted = self.next.height;
            self.heights.wait_for(|height| *height >= wanted).await.ok()?;
            let (reader, filter, start) = (self.reader.clone(), self.filter.clone(), self.next);
            let key = self.key.clone();
            let read = self
                .app
                .read(Consistency::Local, move |state| {
                    // A reader whose key has changed since the stream opened (rotated after a
                    // theft, say) is no longer the one who signed: the stream ends.
                    if let Some(reader) = &reader {
                        let party = query::party(state, &reader.party)?;
                        if party.is_none_or(|p| p.public_key != *key) {
                            return Ok(None);
                        }
                    }
                    events(state, reader.as_ref(), &filter, start).map(Some)
                })
                .await
                .ok()?;
            match read {
                Ok(Some((items, next))) => {
                    // Each transaction shown is a read of every involved party's data: logged
                    // for each of them (one write for the whole page) before any is sent.
                    if let Err(error) = self.log(&items).await {
                        tracing::warn!(%error.message, "an event stream ends: its reads cannot be logged");
                        return None;
                    }
                    self.queued.extend(items);
                    self.next = next;
                }
                Ok(None) => return None,
                Err(error) => {
                    tracing::error!(%error, "reading blocks for an event stream failed");
                    return None;
                }
            }
        }
    }
}

/// Most transactions one access-log entry of a stream names; a page with more is logged as
/// several entries (a page holds up to [`BLOCKS_PER_READ`] blocks of up to 10,000 each).
const TXS_PER_ENTRY_MAX: usize = 256;

impl Cursor {
    /// Logs the `tx` events of `items` (see [`Cursor::logged`]): for a regulator's stream of
    /// one party's transactions, one entry for each party they involve; for a party's own
    /// stream, its own entry only. A party sees only transactions it is a party to, and an
    /// entry in a counterparty's log naming it would tell that counterparty of its part in
    /// each of them as it happens, which the stream itself does not (a carrier is not told
    /// the buyer).
    async fn log(&self, items: &[Item]) -> Result<(), ApiError> {
        let (Some(reader), Some(logged)) = (&self.reader, &self.logged) else { return Ok(()) };
        let regulator = reader.role == Role::Regulator;
        let access = if regulator { Access::Regulator } else { Access::Party };
        let txs: Vec<&Item> = items.iter().filter(|item| item.name == "tx").collect();
        let mut reads = Vec::new();
        for chunk in txs.chunks(TXS_PER_ENTRY_MAX) {
            let mut read = Read::new(reader, logged.purpose.clone(), &access, &logged.path);
            for item in chunk {
                let record = format!("transaction:{}", item.data["tx_hash"].as_str().unwrap_or(""));
                if regulator {
                    let owners: Vec<&str> = item.owners.iter().map(String::as_str).collect();
                    read.add_all(&owners, &record);
                } else {
                    read.add(&reader.party, &record);
                }
            }
            reads.push(read);
        }
        crate::access::record_all(&self.app.access_log, reads).await
    }
}

/// `GET /v1/events`: authenticates, then answers with the stream (or a JSON error).
pub async fn open(
    app: Arc<App>,
    credentials: Credentials,
    path_and_query: String,
    purpose: Option<String>,
    query: HashMap<String, String>,
    last_event_id: Option<String>,
    client: Option<ClientAddress>,
) -> Result<warp::reply::Response, ApiError> {
    let (start, filter) = parse(&query, last_event_id.as_deref())?;
    let signed = credentials.present();
    let path = path_and_query.clone();
    let now_ms = auth::now_ms();
    let authenticator = app.auth.clone();
    let checked = app
        .read(Consistency::Local, move |state| {
            let (reader, key) = if signed {
                let reader = authenticator.authenticate(
                    state,
                    &credentials,
                    "GET",
                    &path_and_query,
                    b"",
                    now_ms,
                )?;
                let party = query::party(state, &reader.party)?;
                (Some(reader), party.map(|p| p.public_key).unwrap_or_default())
            } else {
                (None, Vec::new())
            };
            let tip = query::tip(state)?.map_or(0, |t| t.height);
            Ok::<_, ApiError>((reader, key, tip))
        })
        .await?;
    let (reader, key, tip) = checked?;
    // Another party's transactions are not the reader's to filter on: only a regulator may ask
    // for a party other than itself.
    if let (Some(party), Some(reader)) = (&filter.party, &reader) {
        if reader.role != Role::Regulator && *party != reader.party {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "party= may name only yourself, unless you are a regulator",
            ));
        }
    }
    let slot = match &reader {
        Some(reader) if reader.role == Role::Regulator => {
            app.events.regulators.open(&reader.party)?
        }
        Some(reader) => app.events.parties.open(&reader.party)?,
        None => {
            let address = client.map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
            app.events.unsigned.open(&address)?
        }
    };
    // A signed feed shows private transactions: the stream is logged when it opens (a
    // regulator's whole feed as a read of every party's data), and then each transaction it
    // sends, for the parties it involves (Cursor::log), except on a regulator's whole feed,
    // which the first entry covers.
    let mut logged = None;
    if let Some(reader) = &reader {
        let purpose = crate::access::purpose_of(reader, purpose.as_deref())?;
        let whole_feed = filter.party.is_none() && reader.role == Role::Regulator;
        if !whole_feed {
            logged = Some(Logged { purpose: purpose.clone(), path: path.clone() });
        }
        let read = match (&filter.party, reader.role) {
            (None, Role::Regulator) => Read::everyone(reader, purpose, &path, "events"),
            (Some(party), Role::Regulator) => {
                let mut read = Read::new(reader, purpose, &Access::Regulator, &path);
                read.add(party, "events");
                read
            }
            _ => {
                let mut read = Read::new(reader, purpose, &Access::Party, &path);
                read.add(&reader.party, "events");
                read
            }
        };
        crate::access::record(&app.access_log, Some(read)).await?;
    }
    let cursor = Cursor {
        heights: app.node.heights(),
        app,
        reader,
        key: Arc::new(key),
        filter: Arc::new(filter),
        next: start.unwrap_or(Start { height: tip + 1, index: 0 }),
        queued: VecDeque::new(),
        logged,
        _slot: slot,
    };
    // The cursor runs in a task of its own (its reads of the replica are not `Sync`, which a
    // response body must be) and hands events over a short queue. It ends when the node stops
    // or the client goes (the body, and with it the queue's receiver, is dropped).
    let (sender, receiver) = mpsc::channel::<Item>(64);
    let mut stopping = cursor.app.events.stopping.clone();
    tokio::spawn(async move {
        let mut cursor = cursor;
        loop {
            let item = tokio::select! {
                item = cursor.next_item() => item,
                () = sender.closed() => None,
                _ = stopping.wait_for(|stop| *stop) => None,
            };
            let Some(item) = item else { break };
            // A client that stops reading fills the queue; shutdown must not wait for it.
            let sent = tokio::select! {
                sent = sender.send(item) => sent.is_ok(),
                _ = stopping.wait_for(|stop| *stop) => false,
            };
            if !sent {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let item = receiver.recv().await?;
        let event = Event::default().event(item.name).id(item.id).data(item.data.to_string());
        Some((Ok::<_, Infallible>(event), receiver))
    });
    let mut response =
        warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(stream))
            .into_response();
    response
        .headers_mut()
        .insert("cache-control", warp::http::HeaderValue::from_static("no-cache"));
    Ok(response)
}
