//! A replica's access log: every read of private data that this replica answered, in an
//! append-only file whose entries are hash-chained, so that a deleted or edited entry shows.
//!
//! The log is this replica's own (it is not replicated: each replica accounts for what it
//! served). One entry is one line of the file `access-log` in the data directory: its fields
//! separated by tabs, then the entry's hash. The hash is SHA-256 over the entry's text
//! ([`Entry::text`]):
//!
//! ```text
//! scf-access-v1\n NODE \n SEQ \n PREV \n TIME_MS \n READER \n ROLE \n PURPOSE \n GRANT \n PATH \n OWNERS \n RECORDS
//! ```
//!
//! with `PREV` the previous entry's hash in hex (64 zeros before the first), `PURPOSE` and
//! `GRANT` `-` when there are none, and `OWNERS` and `RECORDS` space-separated (`*` as an owner:
//! every party). The head of the chain (the count and the last hash) is what a replica publishes,
//! so that a reader who saw a head can later tell whether an entry before it went missing.
//!
//! An append is on disk (`fdatasync`) before [`AccessLog::append`] returns: the API answers a
//! private read only after its entry is durable, so no answered read goes unaccounted. Opening
//! the log checks every entry's hash and link; a last line without its newline (a crash in the
//! middle of an append, which answered nothing) is cut off, and any other bad line refuses the
//! open, since it means the file was edited.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ledger::crypto::{Hash32, sha256};

/// The file's name in the data directory.
pub const FILE_NAME: &str = "access-log";
/// The first line of every entry's hashed text: the layout's version.
pub const TAG: &str = "scf-access-v1";
/// The owner that stands for every party (a report over the whole ledger).
pub const EVERY_PARTY: &str = "*";

/// One read, as the API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it was answered, ms since the Unix epoch (this node's clock).
    pub time_ms: u64,
    /// The reader's party id.
    pub reader: String,
    /// The reader's role on the ledger (`regulator`, `enterprise`, ...).
    pub role: String,
    /// Why, as the reader declared it (required of regulators).
    pub purpose: Option<String>,
    /// The owner whose grant allowed the read, if it was a grantee's.
    pub grant: Option<String>,
    /// The request's path and query.
    pub path: String,
    /// Whose data was read ([`EVERY_PARTY`]: everyone's).
    pub owners: Vec<String>,
    /// What was read, as `kind:id`.
    pub records: Vec<String>,
}

/// An entry as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The node whose log this is.
    pub node_id: u64,
    /// Its place in the log, from 1.
    pub seq: u64,
    /// The previous entry's hash (zeros before the first).
    pub prev: Hash32,
    /// The read.
    pub entry: Entry,
    /// SHA-256 of [`Entry::text`].
    pub hash: Hash32,
}

/// The chain's head: how many entries, and the last one's hash (zeros while empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// Entries in the log.
    pub entries: u64,
    /// The last entry's hash.
    pub hash: Hash32,
}

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// Reading or writing the file failed.
    #[error("access log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A complete line does not parse, or its hash or link is wrong: the file was edited.
    #[error("access log {path}, line {line}: {reason} (the file was changed outside the node)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry field holds whitespace or is empty where the layout cannot carry it.
    #[error("access log entry: {0}")]
    BadEntry(&'static str),
}

impl Entry {
    /// The text whose SHA-256 is the entry's hash: its fields escaped ([`escape`]).
    pub fn text(&self, node_id: u64, seq: u64, prev: &Hash32) -> String {
        let [time_ms, reader, role, purpose, grant, path, owners, records] = self.fields();
        format!(
            "{TAG}\n{node_id}\n{seq}\n{}\n{time_ms}\n{reader}\n{role}\n{purpose}\n{grant}\n\
             {path}\n{owners}\n{records}",
            hex::encode(prev),
        )
    }

    /// Refuses an entry that names no owner (a read of nobody's data is not logged), or an
    /// empty list item (which the space-separated lists cannot carry).
    fn check(&self) -> Result<(), AccessLogError> {
        if self.owners.is_empty() {
            return Err(AccessLogError::BadEntry("no owner"));
        }
        if self.owners.iter().chain(&self.records).any(String::is_empty) {
            return Err(AccessLogError::BadEntry("an empty owner or record"));
        }
        Ok(())
    }

    fn fields(&self) -> [String; 8] {
        let optional = |o: &Option<String>| o.as_deref().map_or_else(|| "-".to_owned(), escape);
        let list = |l: &[String]| l.iter().map(|t| escape(t)).collect::<Vec<_>>().join(" ");
        [
            self.time_ms.to_string(),
            escape(&self.reader),
            escape(&self.role),
            optional(&self.purpose),
            optional(&self.grant),
            escape(&self.path),
            list(&self.owners),
            list(&self.records),
        ]
    }
}

/// A field as the layout writes it: `%`, ASCII whitespace and control characters as `%XX`, and
/// a lone `-` (which stands for "none") as `%2D`. So no value, however odd (a rejected
/// transaction may name any party id), can forge a field or a list item.
pub fn escape(text: &str) -> String {
    if text == "-" {
        return "%2D".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch == '%' || ch.is_ascii_whitespace() || ch.is_ascii_control() {
            out.push_str(&format!("%{:02X}", u32::from(ch)));
        } else {
            out.push(ch);
        }
    }
    out
}

/// The inverse of [`escape`].
fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or("a cut %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad %-escape %{hex}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "an escape that is not UTF-8".to_owned())
}

impl Logged {
    /// Whether `party` is one of the owners whose data this read touched.
    pub fn concerns(&self, party: &str) -> bool {
        self.entry.owners.iter().any(|o| o == party || o == EVERY_PARTY)
    }

    /// The file line: seq, prev, the entry's fields, the hash; tab-separated, with a newline.
    fn line(&self) -> String {
        let mut fields = vec![self.seq.to_string(), hex::encode(self.prev)];
        fields.extend(self.entry.fields());
        fields.push(hex::encode(self.hash));
        let mut line = fields.join("\t");
        line.push('\n');
        line
    }

    /// Parses and checks one line (without its newline) of node `node_id`'s log.
    fn parse(node_id: u64, line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [seq, prev, time_ms, reader, role, purpose, grant, path, owners, records, hash] =
            fields[..]
        else {
            return Err(format!("{} fields, not 11", fields.len()));
        };
        let hash32 = |text: &str| -> Result<Hash32, String> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(text, &mut out).map_err(|_| format!("{text:?} is not a hash"))?;
            Ok(out)
        };
        let number = |text: &str| text.parse::<u64>().map_err(|_| format!("{text:?} not a number"));
        let optional = |text: &str| -> Result<Option<String>, String> {
            if text == "-" { Ok(None) } else { unescape(text).map(Some) }
        };
        let list = |text: &str| -> Result<Vec<String>, String> {
            if text.is_empty() { Ok(Vec::new()) } else { text.split(' ').map(unescape).collect() }
        };
        let entry = Entry {
            time_ms: number(time_ms)?,
            reader: unescape(reader)?,
            role: unescape(role)?,
            purpose: optional(purpose)?,
            grant: optional(grant)?,
            path: unescape(path)?,
            owners: list(owners)?,
            records: list(records)?,
        };
        let logged =
            Logged { node_id, seq: number(seq)?, prev: hash32(prev)?, hash: hash32(hash)?, entry };
        let text = logged.entry.text(node_id, logged.seq, &logged.prev);
        if sha256(text.as_bytes()) != logged.hash {
            return Err("the hash does not match the entry".to_owned());
        }
        Ok(logged)
    }
}

/// The log, open for appends. Shared by every request handler of the node.
///
/// Appends hold the file's lock across their write and fsync; the head and the per-grant
/// counts have locks of their own, never held across IO, so that `/v1/status` and the grants
/// view (on the async threads) never wait for the disk.
pub struct AccessLog {
    path: PathBuf,
    node_id: u64,
    state: Mutex<State>,
    head: Mutex<Head>,
    grant_reads: Mutex<BTreeMap<(String, String), u64>>,
}

struct State {
    file: File,
    head: Head,
    /// Where entry `seq` starts in the file, at `seq - 1`; and the file's length at the end.
    offsets: Vec<u64>,
    /// The entries concerning each owner, by seq (`*` entries are in `everyone`).
    by_owner: HashMap<String, Vec<u64>>,
    /// The entries over every party's data.
    everyone: Vec<u64>,
    /// Set when a write failed part-way: the file's tail is unknown until a restart.
    broken: bool,
}

impl State {
    /// The entries concerning `owner` (its own and everyone's; all, for `None`), by seq.
    fn concerning(&self, owner: &str) -> (&[u64], &[u64]) {
        (self.by_owner.get(owner).map_or(&[][..], Vec::as_slice), &self.everyone)
    }

    /// The first `limit` seqs from `from` on of the entries concerning `owner`.
    fn seqs_from(&self, owner: Option<&str>, from: u64, limit: usize) -> Vec<u64> {
        match owner {
            None => (from.max(1)..=self.head.entries).take(limit).collect(),
            Some(owner) => {
                let (own, everyone) = self.concerning(owner);
                merged_from(own, everyone, from, limit)
            }
        }
    }

    /// The last `limit` seqs below `before` of the entries concerning `owner`, in order.
    fn seqs_before(&self, owner: Option<&str>, before: u64, limit: usize) -> Vec<u64> {
        match owner {
            None => {
                let last = before.saturating_sub(1).min(self.head.entries);
                let first = last.saturating_sub(u64::try_from(limit).unwrap_or(u64::MAX)) + 1;
                (first..=last).collect()
            }
            Some(owner) => {
                let (own, everyone) = self.concerning(owner);
                merged_before(own, everyone, before, limit)
            }
        }
    }

    fn index(&mut self, logged: &Logged, grants: &mut BTreeMap<(String, String), u64>) {
        let seq = logged.seq;
        for owner in &logged.entry.owners {
            if owner == EVERY_PARTY {
                self.everyone.push(seq);
            } else {
                self.by_owner.entry(owner.clone()).or_default().push(seq);
            }
        }
        if let Some(owner) = &logged.entry.grant {
            let key = (owner.clone(), logged.entry.reader.clone());
            *grants.entry(key).or_default() += 1;
        }
        self.head = Head { entries: seq, hash: logged.hash };
    }
}

impl AccessLog {
    /// Opens (or creates) node `node_id`'s log in `dir`, checking every entry.
    pub fn open(dir: &Path, node_id: u64) -> Result<Self, AccessLogError> {
        let path = dir.join(FILE_NAME);
        let io_error = |source| AccessLogError::Io { path: path.clone(), source };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error)?;
        let mut state = State {
            file: file.try_clone().map_err(io_error)?,
            head: Head::default(),
            offsets: vec![0],
            by_owner: HashMap::new(),
            everyone: Vec::new(),
            broken: false,
        };
        let mut grants = BTreeMap::new();
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut offset = 0u64;
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(io_error)?;
            if read == 0 {
                break;
            }
            let number = state.head.entries + 1;
            let corrupt = |reason: String| AccessLogError::Corrupt {
                path: path.clone(),
                line: number,
                reason,
            };
            let Some(bytes) = line.strip_suffix(b"\n") else {
                // A torn append: the node stopped before the newline, and so before it
                // answered the read (whatever bytes the tear left, UTF-8 or not).
                state.file.set_len(offset).map_err(io_error)?;
                state.file.sync_data().map_err(io_error)?;
                break;
            };
            let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".to_owned()))?;
            let logged = Logged::parse(node_id, text).map_err(corrupt)?;
            if logged.seq != number {
                return Err(corrupt(format!("seq {} where {number} is next", logged.seq)));
            }
            if logged.prev != state.head.hash {
                return Err(corrupt("its previous hash is not the entry before".to_owned()));
            }
            offset += read as u64;
            state.index(&logged, &mut grants);
            state.offsets.push(offset);
        }
        let head = state.head;
        Ok(AccessLog {
            path,
            node_id,
            state: Mutex::new(state),
            head: Mutex::new(head),
            grant_reads: Mutex::new(grants),
        })
    }

    /// The node whose log this is.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Appends one entry and makes it durable: [`AccessLog::append_all`] of one.
    pub fn append(&self, entry: Entry) -> Result<Logged, AccessLogError> {
        let mut logged = self.append_all(vec![entry])?;
        Ok(logged.pop().expect("one entry appended"))
    }

    /// Appends `entries` in order, in one write and one fsync. Blocks on the disk: call it off
    /// the async threads. After a failed write the log refuses appends until the node restarts
    /// (and the open cuts a torn tail), so that no entry is chained after a line the file may
    /// not hold.
    pub fn append_all(&self, entries: Vec<Entry>) -> Result<Vec<Logged>, AccessLogError> {
        for entry in &entries {
            entry.check()?;
        }
        let mut state = self.state.lock().expect("access log lock");
        let io_error = |source| AccessLogError::Io { path: self.path.clone(), source };
        if state.broken {
            return Err(io_error(io::Error::other("an earlier write failed; restart the node")));
        }
        let mut logged = Vec::with_capacity(entries.len());
        let mut bytes = String::new();
        let (mut seq, mut prev) = (state.head.entries, state.head.hash);
        for entry in entries {
            seq += 1;
            let hash = sha256(entry.text(self.node_id, seq, &prev).as_bytes());
            let one = Logged { node_id: self.node_id, seq, prev, entry, hash };
            bytes.push_str(&one.line());
            prev = hash;
            logged.push(one);
        }
        let written =
            (&state.file).write_all(bytes.as_bytes()).and_then(|()| state.file.sync_data());
        if let Err(error) = written {
            state.broken = true;
            return Err(io_error(error));
        }
        let mut grants = self.grant_reads.lock().expect("access log grants lock");
        for one in &logged {
            let end = state.offsets.last().copied().unwrap_or(0) + one.line().len() as u64;
            state.offsets.push(end);
            state.index(one, &mut grants);
        }
        *self.head.lock().expect("access log head lock") = state.head;
        Ok(logged)
    }

    /// The chain's head.
    pub fn head(&self) -> Head {
        *self.head.lock().expect("access log head lock")
    }

    /// Up to `limit` entries from `from` (a seq) on: those concerning `owner`, or all of them
    /// for `None`. Reads the file: call it off the async threads.
    pub fn entries(
        &self,
        owner: Option<&str>,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Logged>, AccessLogError> {
        self.read_seqs(|state| state.seqs_from(owner, from, limit))
    }

    /// The newest `limit` entries before `before` (a seq, not included), oldest first: those
    /// concerning `owner`, or all of them for `None`. Reads the file: call it off the async
    /// threads.
    pub fn entries_before(
        &self,
        owner: Option<&str>,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Logged>, AccessLogError> {
        self.read_seqs(|state| state.seqs_before(owner, before, limit))
    }

    /// The seq of the first entry from `from` on concerning `owner` (any, for `None`), from
    /// the index alone: no file read.
    pub fn first_from(&self, owner: Option<&str>, from: u64) -> Option<u64> {
        let state = self.state.lock().expect("access log lock");
        state.seqs_from(owner, from, 1).first().copied()
    }

    /// Whether an entry below `before` concerns `owner` (any, for `None`), from the index
    /// alone: no file read.
    pub fn any_before(&self, owner: Option<&str>, before: u64) -> bool {
        let state = self.state.lock().expect("access log lock");
        !state.seqs_before(owner, before, 1).is_empty()
    }

    /// The entries `pick` chooses (ascending seqs), read from the file.
    fn read_seqs(
        &self,
        pick: impl FnOnce(&State) -> Vec<u64>,
    ) -> Result<Vec<Logged>, AccessLogError> {
        let spans: Vec<(u64, u64, u64)> = {
            let state = self.state.lock().expect("access log lock");
            let seqs = pick(&state);
            let span = |seq: u64| {
                let at = usize::try_from(seq - 1).expect("a seq indexes memory");
                (seq, state.offsets[at], state.offsets[at + 1])
            };
            seqs.into_iter().map(span).collect()
        };
        let io_error = |source| AccessLogError::Io { path: self.path.clone(), source };
        let file = File::open(&self.path).map_err(io_error)?;
        let mut out = Vec::with_capacity(spans.len());
        for (seq, start, end) in spans {
            let mut bytes = vec![0u8; usize::try_from(end - start).expect("a line fits memory")];
            file.read_exact_at(&mut bytes, start).map_err(io_error)?;
            let corrupt = |reason: String| AccessLogError::Corrupt {
                path: self.path.clone(),
                line: seq,
                reason,
            };
            let text = std::str::from_utf8(&bytes).map_err(|_| corrupt("not UTF-8".to_owned()))?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            out.push(Logged::parse(self.node_id, text).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Reads made under `owner`'s grants on this replica, by grantee.
    pub fn grant_reads(&self, owner: &str) -> BTreeMap<String, u64> {
        let grants = self.grant_reads.lock().expect("access log grants lock");
        (grants.iter())
            .filter(|((o, _), _)| o == owner)
            .map(|((_, grantee), count)| (grantee.clone(), *count))
            .collect()
    }
}

/// The last `limit` seqs below `before` of the sorted `a` and `b` together, in order.
fn merged_before(a: &[u64], b: &[u64], before: u64, limit: usize) -> Vec<u64> {
    let mut i = a.partition_point(|&s| s < before);
    let mut j = b.partition_point(|&s| s < before);
    let mut out = Vec::new();
    while out.len() < limit && (i > 0 || j > 0) {
        if j == 0 || (i > 0 && a[i - 1] > b[j - 1]) {
            i -= 1;
            out.push(a[i]);
        } else {
            j -= 1;
            out.push(b[j]);
        }
    }
    out.reverse();
    out
}

/// The first `limit` seqs at or after `from` of two ascending lists, merged.
fn merged_from(a: &[u64], b: &[u64], from: u64, limit: usize) -> Vec<u64> {
    let a = &a[a.partition_point(|&s| s < from)..];
    let b = &b[b.partition_point(|&s| s < from)..];
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while out.len() < limit && (i < a.len() || j < b.len()) {
        if j >= b.len() || (i < a.len() && a[i] < b[j]) {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(reader: &str, owners: &[&str], grant: Option<&str>) -> Entry {
        Entry {
            time_ms: 1_700_000_000_000,
            reader: reader.to_owned(),
            role: "enterprise".to_owned(),
            purpose: None,
            grant: grant.map(str::to_owned),
            path: "/v1/invoices/INV-1".to_owned(),
            owners: owners.iter().map(|o| (*o).to_owned()).collect(),
            records: vec!["invoice:INV-1".to_owned()],
        }
    }

    fn dir() -> testkit::TestDir {
        testkit::TestDir::new("access-log")
    }

    #[test]
    fn entries_chain_survive_a_reopen_and_are_found_by_owner() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 7).unwrap();
        let first = log.append(read("bank", &["acme", "buyer"], Some("acme"))).unwrap();
        let mut report = read("reg", &[EVERY_PARTY], None);
        report.purpose = Some("supervision".to_owned());
        let second = log.append(report).unwrap();
        let third = log.append(read("buyer", &["buyer"], None)).unwrap();
        assert_eq!(first.prev, [0; 32]);
        assert_eq!(second.prev, first.hash);
        assert_eq!(third.prev, second.hash);
        assert_eq!(log.head(), Head { entries: 3, hash: third.hash });
        drop(log);

        let log = AccessLog::open(dir.path(), 7).unwrap();
        assert_eq!(log.head(), Head { entries: 3, hash: third.hash });
        let seqs = |owner, from| -> Vec<u64> {
            log.entries(owner, from, 10).unwrap().iter().map(|l| l.seq).collect()
        };
        assert_eq!(seqs(Some("acme"), 0), [1, 2]);
        assert_eq!(seqs(Some("buyer"), 0), [1, 2, 3]);
        assert_eq!(seqs(Some("buyer"), 2), [2, 3]);
        assert_eq!(seqs(Some("nobody"), 0), [2]);
        assert_eq!(seqs(None, 3), [3]);
        assert_eq!(log.entries(None, 1, 10).unwrap()[1], second);
        assert_eq!(log.grant_reads("acme"), BTreeMap::from([("bank".to_owned(), 1)]));
        // The hash is SHA-256 of the documented text.
        let text = second.entry.text(7, 2, &first.hash);
        assert!(text.starts_with("scf-access-v1\n7\n2\n"), "{text}");
        assert!(text.ends_with("\n*\ninvoice:INV-1"), "{text}");
        assert_eq!(sha256(text.as_bytes()), second.hash);
    }

    // Goal: a page before a seq holds the newest entries below it that concern the owner
    // (its own and everyone's), oldest first, for the explorer's "who read my records".
    #[test]
    fn the_newest_entries_before_a_seq_come_oldest_first() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 7).unwrap();
        for owners in [&["acme"][..], &[EVERY_PARTY], &["buyer"], &["acme"], &[EVERY_PARTY]] {
            log.append(read("bank", owners, None)).unwrap();
        }
        let before = |owner, before, limit| -> Vec<u64> {
            log.entries_before(owner, before, limit).unwrap().iter().map(|l| l.seq).collect()
        };
        assert_eq!(before(Some("acme"), u64::MAX, 2), [4, 5]);
        assert_eq!(before(Some("acme"), 4, 10), [1, 2]);
        assert_eq!(before(Some("acme"), 1, 10), [0u64; 0]);
        assert_eq!(before(Some("buyer"), 6, 2), [3, 5]);
        assert_eq!(before(Some("nobody"), 5, 10), [2]);
        assert_eq!(before(None, u64::MAX, 2), [4, 5]);
        assert_eq!(before(None, 3, 10), [1, 2]);
        assert_eq!(before(None, 1, 10), [0u64; 0]);
        assert_eq!(before(None, 0, 10), [0u64; 0]);
    }

    /// Appends `bytes` to the log file in `dir` as a crash mid-write would leave them.
    fn append_raw(dir: &testkit::TestDir, bytes: &[u8]) {
        let path = dir.path().join(FILE_NAME);
        OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        let first = log.append(read("a", &["a"], None)).unwrap();
        drop(log);
        append_raw(&dir, b"2\tdeadbeef\t17000");
        let log = AccessLog::open(dir.path(), 1).unwrap();
        assert_eq!(log.head(), Head { entries: 1, hash: first.hash });
        let second = log.append(read("b", &["b"], None)).unwrap();
        assert_eq!(second.seq, 2);
        drop(log);
        assert_eq!(AccessLog::open(dir.path(), 1).unwrap().head().entries, 2);
    }

    #[test]
    fn a_deleted_or_edited_entry_refuses_the_open() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        for reader in ["a", "b", "c"] {
            log.append(read(reader, &["owner"], None)).unwrap();
        }
        drop(log);
        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        // The middle entry deleted: the third no longer links.
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let error = AccessLog::open(dir.path(), 1).err().unwrap().to_string();
        assert!(error.contains("line 2") && error.contains("seq 3"), "{error}");

        // An entry's reader changed: its hash no longer matches.
        let edited = lines[1].replacen("\tb\t", "\tz\t", 1);
        std::fs::write(&path, format!("{}\n{edited}\n{}\n", lines[0], lines[2])).unwrap();
        let error = AccessLog::open(dir.path(), 1).err().unwrap().to_string();
        assert!(error.contains("line 2") && error.contains("hash"), "{error}");

        // Another node's log: every hash covers the node id.
        std::fs::write(&path, &text).unwrap();
        assert!(AccessLog::open(dir.path(), 2).is_err());
        assert_eq!(AccessLog::open(dir.path(), 1).unwrap().head().entries, 3);
    }

    #[test]
    fn odd_fields_are_escaped_and_read_back_unchanged() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        // A rejected transaction can name any party id: tabs, newlines, spaces, `-`, `%`.
        let odd = Entry {
            reader: "a\tb".to_owned(),
            purpose: Some("-".to_owned()),
            grant: Some("50% off\n".to_owned()),
            path: "/v1/x\n7".to_owned(),
            owners: vec!["o p".to_owned(), "-".to_owned(), "ü".to_owned()],
            ..read("a", &["o"], None)
        };
        let logged = log.append(odd.clone()).unwrap();
        let text = odd.text(1, 1, &[0; 32]);
        assert_eq!(text.lines().count(), 12, "{text}");
        assert!(text.ends_with("\no%20p %2D ü\ninvoice:INV-1"), "{text}");
        drop(log);
        let log = AccessLog::open(dir.path(), 1).unwrap();
        assert_eq!(log.entries(None, 1, 10).unwrap(), [logged]);
        assert_eq!(log.grant_reads("50% off\n").len(), 1);
        // What the layout cannot carry is refused, not written.
        for bad in [read("a", &[], None), read("a", &[""], None)] {
            assert!(matches!(log.append(bad), Err(AccessLogError::BadEntry(_))));
        }
        assert_eq!(log.head().entries, 1);
    }

    #[test]
    fn a_batch_is_one_chain_and_a_torn_multibyte_tail_is_cut() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        let batch = log.append_all(vec![read("a", &["x"], None), read("b", &["y"], None)]).unwrap();
        assert_eq!((batch[0].seq, batch[1].seq, batch[1].prev), (1, 2, batch[0].hash));
        drop(log);
        append_raw(&dir, b"3\tcut in the middle of \xc3");
        let log = AccessLog::open(dir.path(), 1).unwrap();
        assert_eq!(log.head(), Head { entries: 2, hash: batch[1].hash });
    }
}
