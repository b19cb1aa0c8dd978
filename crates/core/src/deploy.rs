//! Deploy records and the pure decisions of a deploy: which objects to upload and why, in which order,
//! and which objects garbage collection may delete. No I/O: `staleguard-store` reads and writes.
//!
//! The store holds, next to the site's objects, a hidden state folder (`.staleguard/`):
//! - `deploys/<id>.json`: one [`DeployRecord`] per deploy (every key with hash, size, headers, mutable);
//! - `history.json`: the [`History`] of deploys, oldest first, with what GC has collected;
//! - `current.json`: the id of the deploy being served (written last: the commit point);
//! - `journal.json`: objects uploaded by a deploy that has not finished (crash recovery);
//! - `bundles/<id>.bin`: the bytes of the mutable contents each deploy introduced (pages, manifests),
//!   concatenated; records say where each content is, so a rollback restores old HTML without the old build.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Version of the record files' format.
pub const RECORD_FORMAT: u32 = 1;
/// The state folder at the root of the store. Hidden: `staleguard serve` never serves it.
pub const STATE_DIR: &str = ".staleguard";
pub const CURRENT_KEY: &str = ".staleguard/current.json";
pub const HISTORY_KEY: &str = ".staleguard/history.json";
/// Gzipped: rewritten every second during a large first deploy.
pub const JOURNAL_KEY: &str = ".staleguard/journal.json.gz";

/// The build writes this hidden file at its output's root: the codec and level of every sidecar its
/// manifest lists (`build --reuse-from` proves a stored sidecar by it). Never served nor deployed; the
/// deploy copies it into the record's `encodings`.
pub const ENCODINGS_FILE: &str = ".staleguard.encodings.json";

/// What [`ENCODINGS_FILE`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodingsFile {
    pub format: u32,
    /// Sidecar output path → blob tag (`br11w22`, `gz9`, `zst19`).
    pub sidecars: BTreeMap<String, String>,
    /// Sidecar names the build did not write because the compression saved too little
    /// (`compress-min-saving`) → the tag it was compressed at.
    #[serde(default)]
    pub not_kept: BTreeMap<String, String>,
}

/// Key of a deploy's record (gzipped JSON: a 35,000-object record is about 2 MB).
pub fn record_key(id: &str) -> String {
    format!("{STATE_DIR}/deploys/{id}.json.gz")
}

/// Key of a deploy's bundle: the bytes of the mutable objects it introduced, concatenated, so a rollback
/// can restore them from the store alone (one PUT per deploy instead of one per page).
pub fn bundle_key(id: &str) -> String {
    format!("{STATE_DIR}/bundles/{id}.bin")
}

/// Where the bytes of a mutable object's content are kept for rollbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyLoc {
    /// The bundle's key.
    pub bundle: String,
    pub offset: u64,
    pub size: u64,
}

/// True for keys of the state folder (records, journal, blobs).
pub fn is_state_key(key: &str) -> bool {
    key == STATE_DIR || key.starts_with(".staleguard/")
}

/// A file a local (`file://`) store is writing: `page.html#1`, its staging name, renamed into place when
/// complete and left behind when the process is killed. Never a URL (`#` starts a fragment): `serve`
/// never answers one and the next deploy removes them.
pub fn is_staging_name(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// One object as deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// blake3 of the bytes, hex.
    pub hash: String,
    pub size: u64,
    /// Mutable objects (HTML, aliases, manifests) keep their key across versions; immutable ones are
    /// named by their content.
    pub mutable: bool,
    /// Headers stored with the object (lower-case names): content-type, cache-control,
    /// content-encoding, and the policy's extra headers.
    pub headers: BTreeMap<String, String>,
    /// Upload order class; see [`Rank`].
    pub rank: Rank,
    /// The store's ETag after our upload, when it gave one: `--verify-remote` compares it to spot objects
    /// changed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ObjectRecord {
    /// Same bytes and same headers: nothing to upload.
    pub fn same_as(&self, other: &ObjectRecord) -> bool {
        self.hash == other.hash && self.size == other.size && self.headers == other.headers
    }
}

/// Upload order: every object of a lower rank is stored before any object of a higher rank is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rank {
    /// Fingerprinted files, their sidecars and rollback copies: nothing references them yet.
    Immutable,
    /// Mutable content (HTML pages, unhashed originals): references only immutable objects, or mutable
    /// ones of the same rank.
    Mutable,
    /// Aliases of download channels (`tool-latest` → `tool-1.4.2`): after what they copy.
    Alias,
    /// Pointers: metadata, manifests, build info. Read by clients to find everything else.
    Pointer,
}

/// What a deploy was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployKind {
    Deploy,
    Rollback,
}

/// Everything one deploy put in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub format: u32,
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub unix: i64,
    pub kind: DeployKind,
    /// For a rollback: the deploy it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// The build's version (manifest digest prefix), empty without a manifest.
    pub version: String,
    #[serde(with = "compact")]
    pub objects: BTreeMap<String, ObjectRecord>,
    /// Content hash → where its bytes are kept, for every mutable object whose bytes are not also stored
    /// under an immutable key. The bundles named here are among `objects`, so GC keeps them as long as
    /// the record is retained.
    #[serde(default)]
    pub copies: BTreeMap<String, CopyLoc>,
    /// Sidecar key → the codec and level its bytes were compressed with (`br11w22`, `gz9`, `zst19`: the
    /// build's blob tag), as the build that produced them said. What `build --reuse-from` needs to prove
    /// that a stored sidecar is exactly what this build would compress; records written before it
    /// (no such field) prove no level, and their sidecars are compressed again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encodings: BTreeMap<String, String>,
    /// Sidecar names (of objects in `objects`) that the build compressed at a level (the tag) and did not
    /// keep, saving too little: `build --reuse-from` need not try again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_kept: BTreeMap<String, String>,
}

impl DeployRecord {
    pub fn bytes(&self) -> u64 {
        self.objects.values().map(|o| o.size).sum()
    }
}

/// One line of the deploy history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub time: String,
    pub unix: i64,
    pub kind: DeployKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    pub version: String,
    pub objects: usize,
    pub bytes: u64,
    /// Objects this deploy uploaded (new, changed or re-headered) and their bytes.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// GC has deleted every object only this deploy (and older ones) referenced: it can no longer be
    /// rolled back to.
    #[serde(default)]
    pub collected: bool,
}

/// All deploys, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub format: u32,
    pub deploys: Vec<HistoryEntry>,
}

impl History {
    /// The deploy whose id is `id` or starts with it; an error saying why not (none, or several).
    pub fn find(&self, id: &str) -> Result<&HistoryEntry, String> {
        let hits: Vec<&HistoryEntry> = self
            .deploys
            .iter()
            .filter(|e| e.id.starts_with(id))
            .collect();
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "no deploy `{id}` in the history\nhint: `staleguard deploys` lists them"
            )),
            many => Err(format!(
                "`{id}` matches {} deploys ({}); give more of the id",
                many.len(),
                many.iter()
                    .map(|e| e.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// How many entries were committed: up to the current deploy's (`current`: the id in
    /// `current.json`). Entries after it were written by a commit killed before its pointer; with no
    /// pointer, none was committed. A pointer to an id the history lacks keeps every entry.
    pub fn committed(&self, current: Option<&str>) -> usize {
        current.map_or(0, |c| {
            self.deploys
                .iter()
                .rposition(|e| e.id == c)
                .map_or(self.deploys.len(), |p| p + 1)
        })
    }

    /// The deploy recorded just before `id` (the last entry with that id, for safety).
    pub fn before(&self, id: &str) -> Option<&HistoryEntry> {
        let pos = self.deploys.iter().rposition(|e| e.id == id)?;
        pos.checked_sub(1).map(|p| &self.deploys[p])
    }
}

/// The commit point: which deploy the store serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub format: u32,
    pub id: String,
}

/// Objects uploaded by a deploy that has not reached its commit point. The next deploy trusts them
/// instead of uploading them again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    #[serde(with = "compact")]
    pub objects: BTreeMap<String, ObjectRecord>,
}

/// Objects as stored in records and journals: each distinct header set once, objects refer to it by index
/// (a site has a handful of header sets and thousands of objects).
mod compact {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{ObjectRecord, Rank};

    #[derive(Serialize, Deserialize)]
    struct Stored {
        hash: String,
        size: u64,
        mutable: bool,
        rank: Rank,
        /// Index into `header_sets`.
        h: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct Objects {
        header_sets: Vec<BTreeMap<String, String>>,
        objects: BTreeMap<String, Stored>,
    }

    pub fn serialize<S: Serializer>(
        objects: &BTreeMap<String, ObjectRecord>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut sets: Vec<BTreeMap<String, String>> = Vec::new();
        let mut index: BTreeMap<&BTreeMap<String, String>, usize> = BTreeMap::new();
        let mut stored = BTreeMap::new();
        for (k, o) in objects {
            let h = match index.get(&o.headers) {
                Some(i) => *i,
                None => {
                    sets.push(o.headers.clone());
                    index.insert(&o.headers, sets.len() - 1);
                    sets.len() - 1
                }
            };
            stored.insert(
                k.clone(),
                Stored {
                    hash: o.hash.clone(),
                    size: o.size,
                    mutable: o.mutable,
                    rank: o.rank,
                    h,
                    etag: o.etag.clone(),
                },
            );
        }
        Objects {
            header_sets: sets,
            objects: stored,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, ObjectRecord>, D::Error> {
        let o = Objects::deserialize(d)?;
        o.objects
            .into_iter()
            .map(|(k, s)| {
                let headers = o.header_sets.get(s.h).cloned().ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "object `{k}` names header set {} of {}",
                        s.h,
                        o.header_sets.len()
                    ))
                })?;
                Ok((
                    k,
                    ObjectRecord {
                        hash: s.hash,
                        size: s.size,
                        mutable: s.mutable,
                        headers,
                        rank: s.rank,
                        etag: s.etag,
                    },
                ))
            })
            .collect()
    }
}

/// Why an object is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The key is not in the store.
    New,
    /// The bytes differ.
    Content,
    /// Same bytes, other headers (e.g. a new Cache-Control).
    Headers,
    /// `--verify-remote` found the object missing or changed by hand.
    Drift,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::Content => "content",
            Reason::Headers => "headers",
            Reason::Drift => "drift",
        }
    }
}

/// One object to upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub key: String,
    pub reason: Reason,
    pub rank: Rank,
    pub size: u64,
}

/// What a deploy will do to the site's objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// In upload order: by rank, then key.
    pub uploads: Vec<Upload>,
    /// Keys already in the store as wanted.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Keys of the previous deploy that this one no longer has: left in place (old pages in caches still
    /// reference them) until GC.
    pub dropped: Vec<String>,
}

impl Plan {
    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.size).sum()
    }
}

/// Compares what the store has (`base`: the current deploy's objects, overlaid with a journal) with what
/// the next deploy wants.
pub fn diff(base: &BTreeMap<String, ObjectRecord>, next: &BTreeMap<String, ObjectRecord>) -> Plan {
    let mut plan = Plan::default();
    for (key, want) in next {
        let reason = match base.get(key) {
            None => Some(Reason::New),
            Some(have) if have.hash != want.hash || have.size != want.size => Some(Reason::Content),
            Some(have) if have.headers != want.headers => Some(Reason::Headers),
            Some(_) => None,
        };
        match reason {
            Some(reason) => plan.uploads.push(Upload {
                key: key.clone(),
                reason,
                rank: want.rank,
                size: want.size,
            }),
            None => {
                plan.kept += 1;
                plan.kept_bytes += want.size;
            }
        }
    }
    plan.dropped = base
        .keys()
        .filter(|k| !next.contains_key(*k))
        .cloned()
        .collect();
    sort_uploads(&mut plan.uploads);
    plan
}

/// Upload order: rank, then new before changed within a rank (a changed page may link to a new one),
/// then key.
pub fn sort_uploads(uploads: &mut [Upload]) {
    uploads.sort_by(|a, b| {
        (a.rank, a.reason != Reason::New, &a.key).cmp(&(b.rank, b.reason != Reason::New, &b.key))
    });
}

/// A deploy id: sortable by time, unique by content: `20261121T164500Z-<12 hex>`.
pub fn deploy_id(unix: i64, objects: &BTreeMap<String, ObjectRecord>, salt: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    for (k, o) in objects {
        h.update(k.as_bytes());
        h.update(o.hash.as_bytes());
    }
    let t = crate::manifest::format_rfc3339(unix)
        .replace(['-', ':'], "")
        .trim_end_matches('Z')
        .to_string();
    format!("{t}Z-{}", &h.finalize().to_hex()[..12])
}

/// What GC decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcPlan {
    /// Keys to delete, in delete order: the reverse of upload order (pointers, aliases, pages, other
    /// mutable objects, then immutable ones), sorted within each wave. See [`GcPlan::waves`].
    pub delete: Vec<String>,
    /// Where each wave of `delete` ends (exclusive): a wave is deleted completely before the next one
    /// starts, so no object left in the store references one already gone, whenever GC stops.
    #[serde(skip)]
    pub wave_ends: Vec<usize>,
    pub delete_bytes: u64,
    /// Records whose objects are all gone (or kept by a newer deploy) once `delete` is done.
    pub collect: Vec<String>,
    /// Keys that would go but left the site less than the age limit ago.
    pub waiting: usize,
}

/// Chooses what GC deletes. `history` is oldest first; `records` has the record of every deploy that is
/// among the last `keep` or not yet collected (others are not needed). An object is deleted when none of
/// the last `keep` deploys (nor the journal of a deploy in progress) references it, and the deploy that
/// dropped it is at least `keep_age_secs` old: pages cached before it still work that long.
pub fn gc_plan(
    history: &History,
    records: &BTreeMap<String, DeployRecord>,
    journal: Option<&Journal>,
    keep: usize,
    keep_age_secs: i64,
    now_unix: i64,
) -> GcPlan {
    let n = history.deploys.len();
    let keep = keep.max(1);
    let mut retained: BTreeSet<&str> = BTreeSet::new();
    for e in &history.deploys[n.saturating_sub(keep)..] {
        if let Some(r) = records.get(&e.id) {
            retained.extend(r.objects.keys().map(String::as_str));
        }
    }
    if let Some(j) = journal {
        retained.extend(j.objects.keys().map(String::as_str));
    }
    let mut plan = GcPlan::default();
    let mut delete: BTreeMap<&str, &ObjectRecord> = BTreeMap::new();
    for (i, e) in history.deploys[..n.saturating_sub(keep)].iter().enumerate() {
        if e.collected {
            continue;
        }
        let Some(r) = records.get(&e.id) else {
            continue;
        };
        // The deploy after this one dropped whatever it does not carry on; its time is when those
        // objects left the site.
        let left_at = history
            .deploys
            .get(i + 1)
            .map_or(now_unix, |next| next.unix);
        let old_enough = now_unix - left_at >= keep_age_secs;
        let mut waiting = 0;
        for (k, o) in &r.objects {
            if retained.contains(k.as_str())
                || is_state_key(k) && !k.starts_with(".staleguard/bundles/")
            {
                continue;
            }
            if old_enough {
                delete.insert(k, o);
            } else {
                waiting += 1;
            }
        }
        plan.waiting += waiting;
        if waiting == 0 {
            plan.collect.push(e.id.clone());
        }
    }
    plan.delete_bytes = delete.values().map(|o| o.size).sum();
    let mut order: Vec<(u8, &str)> = delete.iter().map(|(k, o)| (delete_wave(o), *k)).collect();
    order.sort();
    for (i, w) in order.iter().enumerate() {
        if order.get(i + 1).is_none_or(|n| n.0 != w.0) {
            plan.wave_ends.push(i + 1);
        }
    }
    plan.delete = order.into_iter().map(|(_, k)| k.to_string()).collect();
    plan
}

/// The GC wave of an object: the reverse of upload order. What reads others goes first (pointers,
/// aliases), then pages (which link other mutable files: feeds, unhashed scripts), then the other
/// mutable objects, and immutable objects (fingerprinted files, rollback bundles) last.
fn delete_wave(o: &ObjectRecord) -> u8 {
    match o.rank {
        Rank::Pointer => 0,
        Rank::Alias => 1,
        Rank::Mutable
            if o.headers
                .get("content-type")
                .is_some_and(|t| t.starts_with("text/html")) =>
        {
            2
        }
        Rank::Mutable => 3,
        Rank::Immutable => 4,
    }
}

impl GcPlan {
    /// `delete` in its waves, first to last.
    pub fn waves(&self) -> impl Iterator<Item = &[String]> {
        let mut start = 0;
        let ends = if self.wave_ends.is_empty() && !self.delete.is_empty() {
            vec![self.delete.len()]
        } else {
            self.wave_ends.clone()
        };
        ends.into_iter().map(move |end| {
            let w = &self.delete[start.min(end)..end];
            start = end;
            w
        })
    }
}

/// Parses an age like `90s`, `30m`, `12h`, `1d`, `2w` (or plain seconds) into seconds.
pub fn parse_age(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not an age; write e.g. 90s, 30m, 12h, 1d or 2w"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        u => return Err(format!("unknown unit `{u}` in `{s}`; use s, m, h, d or w")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(hash: &str, mutable: bool, cc: &str) -> ObjectRecord {
        ObjectRecord {
            hash: hash.into(),
            size: hash.len() as u64,
            mutable,
            headers: [("cache-control".to_string(), cc.to_string())].into(),
            rank: if mutable {
                Rank::Mutable
            } else {
                Rank::Immutable
            },
            etag: None,
        }
    }

    fn map(items: &[(&str, ObjectRecord)]) -> BTreeMap<String, ObjectRecord> {
        items
            .iter()
            .map(|(k, o)| (k.to_string(), o.clone()))
            .collect()
    }

    #[test]
    fn diff_reasons_and_order() {
        let base = map(&[
            ("a.1.css", obj("1", false, "imm")),
            ("index.html", obj("h1", true, "no-cache")),
            ("about.html", obj("h2", true, "no-cache")),
            ("old.0.css", obj("0", false, "imm")),
        ]);
        let next = map(&[
            ("a.1.css", obj("1", false, "imm")),
            ("a.2.css", obj("2", false, "imm")),
            ("index.html", obj("h3", true, "no-cache")),
            ("about.html", obj("h2", true, "max-age=60")),
            ("new.html", obj("h4", true, "no-cache")),
        ]);
        let p = diff(&base, &next);
        let got: Vec<(&str, Reason)> = p
            .uploads
            .iter()
            .map(|u| (u.key.as_str(), u.reason))
            .collect();
        assert_eq!(
            got,
            [
                ("a.2.css", Reason::New),
                ("new.html", Reason::New),
                ("about.html", Reason::Headers),
                ("index.html", Reason::Content),
            ]
        );
        assert_eq!(p.kept, 1);
        assert_eq!(p.dropped, ["old.0.css"]);
    }

    fn entry(id: &str, unix: i64) -> HistoryEntry {
        HistoryEntry {
            id: id.into(),
            time: String::new(),
            unix,
            kind: DeployKind::Deploy,
            restores: None,
            git_commit: None,
            version: String::new(),
            objects: 0,
            bytes: 0,
            uploaded: 0,
            uploaded_bytes: 0,
            collected: false,
        }
    }

    fn record(id: &str, keys: &[&str]) -> DeployRecord {
        DeployRecord {
            format: RECORD_FORMAT,
            id: id.into(),
            time: String::new(),
            unix: 0,
            kind: DeployKind::Deploy,
            restores: None,
            git_commit: None,
            version: String::new(),
            objects: keys
                .iter()
                .map(|k| (k.to_string(), obj(k, false, "imm")))
                .collect(),
            copies: BTreeMap::new(),
            encodings: BTreeMap::new(),
            not_kept: BTreeMap::new(),
        }
    }

    #[test]
    fn gc_keeps_the_last_k_and_waits_for_the_age() {
        let day = 86_400;
        let history = History {
            format: 1,
            deploys: vec![
                entry("d1", 0),
                entry("d2", day),
                entry("d3", 2 * day),
                entry("d4", 3 * day),
            ],
        };
        let records: BTreeMap<String, DeployRecord> = [
            record("d1", &["a", "only1", "shared"]),
            record("d2", &["a", "only2", "shared"]),
            record("d3", &["a", "b"]),
            record("d4", &["a", "b", "c"]),
        ]
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
        // keep 2: d3, d4 retained; d1 and d2 are candidates. d1's objects left the site at d2 (day 1),
        // d2's at d3 (day 2).
        let p = gc_plan(&history, &records, None, 2, day, 3 * day);
        assert_eq!(p.delete, ["only1", "only2", "shared"]);
        assert_eq!(p.collect, ["d1", "d2"]);
        // Too young: d2's objects left at day 2; at day 2.5 with a 1-day age they wait.
        let p = gc_plan(&history, &records, None, 2, day, 2 * day + day / 2);
        assert_eq!(p.delete, ["only1", "shared"]);
        assert_eq!(p.collect, ["d1"]);
        assert_eq!(p.waiting, 2);
        // A journal (deploy in progress) protects what it uploaded.
        let j = Journal {
            format: 1,
            objects: [("only1".to_string(), obj("x", false, "imm"))].into(),
        };
        let p = gc_plan(&history, &records, Some(&j), 2, day, 3 * day);
        assert_eq!(p.delete, ["only2", "shared"]);
        // Collected deploys are skipped; keep >= history deletes nothing.
        let p = gc_plan(&history, &records, None, 4, 0, 10 * day);
        assert!(p.delete.is_empty() && p.collect.is_empty());
    }

    #[test]
    fn committed_entries_end_at_the_current_pointer() {
        let h = History {
            format: 1,
            deploys: vec![entry("a", 0), entry("b", 1), entry("c", 2)],
        };
        assert_eq!(h.committed(Some("b")), 2, "c never reached current.json");
        assert_eq!(h.committed(Some("c")), 3);
        assert_eq!(h.committed(None), 0, "no pointer: nothing committed");
        assert_eq!(h.committed(Some("zz")), 3, "unknown pointer: keep all");
    }

    #[test]
    fn staging_names() {
        for (name, want) in [
            ("page.html#1", true),
            ("img/x.png#12", true),
            ("a#b", false),
            ("#1", false),
            ("dir#1/page.html", false),
            ("page.html", false),
        ] {
            assert_eq!(is_staging_name(name), want, "{name}");
        }
    }

    #[test]
    fn gc_deletes_in_the_reverse_of_upload_order() {
        let history = History {
            format: 1,
            deploys: vec![entry("d1", 0), entry("d2", 10)],
        };
        let mut old = record("d1", &["a.1.css", "z.2.js"]);
        let mut put = |k: &str, rank: Rank, ct: &str| {
            let mut o = obj(k, rank != Rank::Immutable, "m");
            o.rank = rank;
            o.headers.insert("content-type".into(), ct.into());
            old.objects.insert(k.into(), o);
        };
        put(
            "about/index.html",
            Rank::Mutable,
            "text/html; charset=utf-8",
        );
        put("feed.xml", Rank::Mutable, "application/xml");
        put("a.html", Rank::Mutable, "text/html");
        put("latest.tar.gz", Rank::Alias, "application/gzip");
        put("manifest.json", Rank::Pointer, "application/json");
        let records: BTreeMap<String, DeployRecord> = [old, record("d2", &["kept"])]
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let p = gc_plan(&history, &records, None, 1, 0, 20);
        let waves: Vec<Vec<&str>> = p
            .waves()
            .map(|w| w.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            waves,
            [
                vec!["manifest.json"],
                vec!["latest.tar.gz"],
                vec!["a.html", "about/index.html"],
                vec!["feed.xml"],
                vec!["a.1.css", "z.2.js"],
            ]
        );
        assert_eq!(p.delete.len(), 7);
        assert_eq!(GcPlan::default().waves().count(), 0);
    }

    #[test]
    fn records_round_trip_with_shared_header_sets() {
        let r = record("d1", &["a", "b", "c"]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json.matches("cache-control").count(), 1, "{json}");
        let back: DeployRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let bad = json.replace("\"h\":0", "\"h\":7");
        assert!(serde_json::from_str::<DeployRecord>(&bad).is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("1d"), Ok(86_400));
        assert_eq!(parse_age("90"), Ok(90));
        assert_eq!(parse_age("30m"), Ok(1800));
        assert_eq!(parse_age("2w"), Ok(1_209_600));
        assert!(parse_age("1y").is_err());
        assert!(parse_age("d").is_err());
    }

    #[test]
    fn ids_sort_by_time() {
        let o = BTreeMap::new();
        let a = deploy_id(1_700_000_000, &o, "x");
        let b = deploy_id(1_700_000_060, &o, "x");
        assert!(a < b, "{a} {b}");
        assert!(a.starts_with("20231114T221320Z-"), "{a}");
    }
}
