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
    /// The text whose SHA-256 is the entry's hash.
    pub fn text(&self, node_id: u64, seq: u64, prev: &Hash32) -> String {
        format!(
            "{TAG}\n{node_id}\n{seq}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            hex::encode(prev),
            self.time_ms,
            self.reader,
            self.role,
            self.purpose.as_deref().unwrap_or("-"),
            self.grant.as_deref().unwrap_or("-"),
            self.path,
            self.owners.join(" "),
            self.records.join(" "),
        )
    }

    /// Refuses fields the layout cannot carry: empty ones and any with whitespace (a tab or a
    /// newline would forge a field; a space, a list item).
    fn check(&self) -> Result<(), AccessLogError> {
        fn word(text: &str) -> bool {
            !text.is_empty() && !text.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20)
        }
        let optional = [&self.purpose, &self.grant];
        let ok = word(&self.reader)
            && word(&self.role)
            && word(&self.path)
            && optional.iter().all(|o| o.as_deref().is_none_or(|t| word(t) && t != "-"))
            && !self.owners.is_empty()
            && self.owners.iter().all(|o| word(o))
            && self.records.iter().all(|r| word(r));
        if ok { Ok(()) } else { Err(AccessLogError::BadEntry("an empty field or whitespace")) }
    }

    fn fields(&self) -> [String; 8] {
        [
            self.time_ms.to_string(),
            self.reader.clone(),
            self.role.clone(),
            self.purpose.clone().unwrap_or_else(|| "-".to_owned()),
            self.grant.clone().unwrap_or_else(|| "-".to_owned()),
            self.path.clone(),
            self.owners.join(" "),
            self.records.join(" "),
        ]
    }
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
        let optional = |text: &str| (text != "-").then(|| text.to_owned());
        let list = |text: &str| -> Vec<String> {
            text.split(' ').filter(|t| !t.is_empty()).map(str::to_owned).collect()
        };
        let entry = Entry {
            time_ms: number(time_ms)?,
            reader: reader.to_owned(),
            role: role.to_owned(),
            purpose: optional(purpose),
            grant: optional(grant),
            path: path.to_owned(),
            owners: list(owners),
            records: list(records),
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
pub struct AccessLog {
    path: PathBuf,
    node_id: u64,
    state: Mutex<State>,
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
    /// Reads made under each (owner, grantee) grant.
    grant_reads: BTreeMap<(String, String), u64>,
    /// Set when a write failed part-way: the file's tail is unknown until a restart.
    broken: bool,
}

impl State {
    fn index(&mut self, logged: &Logged) {
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
            *self.grant_reads.entry(key).or_default() += 1;
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
            grant_reads: BTreeMap::new(),
            broken: false,
        };
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut offset = 0u64;
        loop {
            line.clear();
            let read = reader.read_line(&mut line).map_err(io_error)?;
            if read == 0 {
                break;
            }
            let number = state.head.entries + 1;
            let corrupt = |reason: String| AccessLogError::Corrupt {
                path: path.clone(),
                line: number,
                reason,
            };
            let Some(text) = line.strip_suffix('\n') else {
                // A torn append: the node stopped before the newline, and before it answered.
                state.file.set_len(offset).map_err(io_error)?;
                state.file.sync_data().map_err(io_error)?;
                break;
            };
            let logged = Logged::parse(node_id, text).map_err(corrupt)?;
            if logged.seq != number {
                return Err(corrupt(format!("seq {} where {number} is next", logged.seq)));
            }
            if logged.prev != state.head.hash {
                return Err(corrupt("its previous hash is not the entry before".to_owned()));
            }
            offset += read as u64;
            state.index(&logged);
            state.offsets.push(offset);
        }
        Ok(AccessLog { path, node_id, state: Mutex::new(state) })
    }

    /// Appends one entry and makes it durable. Blocks on the disk: call it off the async
    /// threads. After a failed write the log refuses appends until the node restarts (and the
    /// open cuts a torn tail), so that no entry is chained after a line the file may not hold.
    pub fn append(&self, entry: Entry) -> Result<Logged, AccessLogError> {
        entry.check()?;
        let mut state = self.state.lock().expect("access log lock");
        let io_error = |source| AccessLogError::Io { path: self.path.clone(), source };
        if state.broken {
            return Err(io_error(io::Error::other("an earlier write failed; restart the node")));
        }
        let seq = state.head.entries + 1;
        let prev = state.head.hash;
        let hash = sha256(entry.text(self.node_id, seq, &prev).as_bytes());
        let logged = Logged { node_id: self.node_id, seq, prev, entry, hash };
        let line = logged.line();
        let written =
            (&state.file).write_all(line.as_bytes()).and_then(|()| state.file.sync_data());
        if let Err(error) = written {
            state.broken = true;
            return Err(io_error(error));
        }
        let end = state.offsets.last().copied().unwrap_or(0) + line.len() as u64;
        state.offsets.push(end);
        state.index(&logged);
        Ok(logged)
    }

    /// The node whose log this is.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The chain's head.
    pub fn head(&self) -> Head {
        self.state.lock().expect("access log lock").head
    }

    /// Up to `limit` entries from `from` (a seq) on: those concerning `owner`, or all of them
    /// for `None`.
    pub fn entries(
        &self,
        owner: Option<&str>,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Logged>, AccessLogError> {
        let spans: Vec<(u64, u64)> = {
            let state = self.state.lock().expect("access log lock");
            let seqs: Vec<u64> = match owner {
                None => (from.max(1)..=state.head.entries).take(limit).collect(),
                Some(owner) => {
                    let own = state.by_owner.get(owner).map_or(&[][..], Vec::as_slice);
                    merged_from(own, &state.everyone, from, limit)
                }
            };
            let span = |seq: u64| {
                let at = usize::try_from(seq - 1).expect("a seq indexes memory");
                (state.offsets[at], state.offsets[at + 1])
            };
            seqs.into_iter().map(span).collect()
        };
        let io_error = |source| AccessLogError::Io { path: self.path.clone(), source };
        let file = File::open(&self.path).map_err(io_error)?;
        let mut out = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            let mut bytes = vec![0u8; usize::try_from(end - start).expect("a line fits memory")];
            file.read_exact_at(&mut bytes, start).map_err(io_error)?;
            let text = String::from_utf8_lossy(&bytes);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let logged = Logged::parse(self.node_id, text).map_err(|reason| {
                AccessLogError::Corrupt { path: self.path.clone(), line: 0, reason }
            })?;
            out.push(logged);
        }
        Ok(out)
    }

    /// Reads made under `owner`'s grants on this replica, by grantee.
    pub fn grant_reads(&self, owner: &str) -> BTreeMap<String, u64> {
        let state = self.state.lock().expect("access log lock");
        (state.grant_reads.iter())
            .filter(|((o, _), _)| o == owner)
            .map(|((_, grantee), count)| (grantee.clone(), *count))
            .collect()
    }
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

    #[test]
    fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        let first = log.append(read("a", &["a"], None)).unwrap();
        drop(log);
        let path = dir.path().join(FILE_NAME);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"2\tdeadbeef\t17000").unwrap();
        drop(file);
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
    fn fields_that_would_forge_the_layout_are_refused() {
        let dir = dir();
        let log = AccessLog::open(dir.path(), 1).unwrap();
        for bad in [
            Entry { reader: "a\tb".to_owned(), ..read("a", &["o"], None) },
            Entry { path: "/v1/x\n7".to_owned(), ..read("a", &["o"], None) },
            Entry { purpose: Some("-".to_owned()), ..read("a", &["o"], None) },
            Entry { owners: vec!["o p".to_owned()], ..read("a", &["o"], None) },
            read("a", &[], None),
        ] {
            assert!(matches!(log.append(bad), Err(AccessLogError::BadEntry(_))));
        }
        assert_eq!(log.head().entries, 0);
    }
}
