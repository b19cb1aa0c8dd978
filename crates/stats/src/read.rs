//! Reading logs: plain or gzip (by their magic bytes, members concatenated as `cat a.gz b.gz`
//! makes), in chunks of whole lines handed to worker threads, so memory is the chunks in flight
//! (at most `2 × workers + 1` of [`CHUNK`] bytes each) whatever the file's size.
//!
//! The reader thread only splits at newlines and counts them (for `file:line` in messages); the
//! workers parse and count. CloudFront's `#Fields:` header is tracked by the reader too, so a chunk
//! starting in the middle of a file knows its columns.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use crate::StatsError;
use crate::aggregate::Aggregate;
use crate::format::{Format, Parser, detect, w3c::Layout};
use crate::routes::Routes;

/// Bytes per chunk handed to a worker.
pub const CHUNK: usize = 1 << 20;
/// A line longer than this is cut (and its pieces reported as malformed).
pub const MAX_LINE: usize = 16 << 20;

/// One input file as opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub path: String,
    pub format: Format,
    pub gzip: bool,
}

struct Chunk {
    file: usize,
    name: Arc<str>,
    first_line: u64,
    format: Format,
    layout: Option<Arc<Layout>>,
    data: Vec<u8>,
}

/// What the readers need from the caller.
pub struct ReadOptions<'a> {
    pub format: Option<Format>,
    /// CloudFront real-time logs' field list.
    pub fields: Option<Arc<Layout>>,
    pub routes: &'a Routes,
    pub workers: usize,
    pub width: Option<i64>,
    pub sketch: usize,
}

fn open(path: &Path) -> Result<(Box<dyn BufRead + Send>, bool), StatsError> {
    let io = |source| StatsError::Io {
        path: path.display().to_string(),
        source,
    };
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(io)?)
    };
    let mut buf = BufReader::with_capacity(256 << 10, raw);
    let head = buf.fill_buf().map_err(io)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(buf);
        Ok((Box::new(BufReader::with_capacity(256 << 10, gz)), true))
    } else {
        Ok((Box::new(buf), false))
    }
}

/// Fills `buf` from `r` until it holds `want` bytes or the input ends; `Ok(false)` at the end.
fn fill(r: &mut dyn BufRead, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(false);
        }
        let n = avail.len().min(want - buf.len());
        buf.extend_from_slice(&avail[..n]);
        r.consume(n);
    }
    Ok(true)
}

/// Reads every file and counts them on `workers` threads.
pub fn read_all(
    paths: &[PathBuf],
    opts: &ReadOptions<'_>,
) -> Result<(Aggregate, Vec<Opened>), StatsError> {
    let workers = opts.workers.max(1);
    let (tx, rx) = sync_channel::<Chunk>(workers * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = Arc::clone(&rx);
                s.spawn(move || work(&rx, opts))
            })
            .collect();
        let mut opened = Vec::new();
        let mut failure = None;
        for (i, p) in paths.iter().enumerate() {
            match read_one(i, p, opts, &tx) {
                Ok(o) => opened.push(o),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let mut total = Aggregate::new(opts.width, opts.sketch);
        for h in handles {
            // A worker panic is a bug; say so rather than hide it.
            let agg = h.join().expect("a stats worker panicked");
            total.merge(agg);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((total, opened)),
        }
    })
}

fn read_one(
    file: usize,
    path: &Path,
    opts: &ReadOptions<'_>,
    tx: &std::sync::mpsc::SyncSender<Chunk>,
) -> Result<Opened, StatsError> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let io = |source| StatsError::Io {
        path: name.to_string(),
        source,
    };
    let (mut r, gzip) = open(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut more = fill(r.as_mut(), &mut buf, CHUNK).map_err(io)?;
    let format = match opts.format {
        Some(f) => f,
        None if buf.is_empty() => Format::Combined,
        None => detect(&buf).ok_or_else(|| StatsError::Undetected {
            path: name.to_string(),
            sample: String::from_utf8_lossy(buf.split(|&b| b == b'\n').next().unwrap_or_default())
                .chars()
                .take(120)
                .collect(),
        })?,
    };
    let mut layout = match format {
        Format::CloudfrontRealtime => opts.fields.clone(),
        _ => None,
    };
    let mut line = 1u64;
    loop {
        // Cut after the last newline; the rest starts the next chunk.
        let cut = if more {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None if buf.len() < MAX_LINE => {
                    // One line longer than the buffer: read on.
                    let want = buf.len() * 2;
                    more = fill(r.as_mut(), &mut buf, want).map_err(io)?;
                    continue;
                }
                None => buf.len(),
            }
        } else {
            buf.len()
        };
        let rest = buf.split_off(cut);
        let data = std::mem::replace(&mut buf, rest);
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
        let next_layout = if format.has_header() {
            last_header(&data).or_else(|| layout.clone())
        } else {
            None
        };
        if !data.is_empty() {
            let chunk = Chunk {
                file,
                name: Arc::clone(&name),
                first_line: line,
                format,
                layout: layout.clone(),
                data,
            };
            if tx.send(chunk).is_err() {
                break;
            }
        }
        layout = next_layout;
        line += lines;
        if !more && buf.is_empty() {
            break;
        }
        buf.reserve(CHUNK);
        if more {
            more = fill(r.as_mut(), &mut buf, CHUNK).map_err(io)?;
        }
    }
    Ok(Opened {
        path: name.to_string(),
        format,
        gzip,
    })
}

/// The layout of the last valid `#Fields:` line of a chunk.
fn last_header(data: &[u8]) -> Option<Arc<Layout>> {
    let mut end = data.len();
    while let Some(i) = memchr::memmem::rfind(&data[..end], b"#Fields:") {
        if i == 0 || data[i - 1] == b'\n' {
            let stop = memchr::memchr(b'\n', &data[i..]).map_or(data.len(), |n| i + n);
            let text = &data[i..stop];
            return Layout::from_header(text.strip_suffix(b"\r").unwrap_or(text))
                .ok()
                .map(Arc::new);
        }
        end = i;
    }
    None
}

fn work(rx: &Mutex<Receiver<Chunk>>, opts: &ReadOptions<'_>) -> Aggregate {
    let mut agg = Aggregate::new(opts.width, opts.sketch);
    loop {
        let chunk = {
            let guard = match rx.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match guard.recv() {
                Ok(c) => c,
                Err(_) => break,
            }
        };
        let mut parser = Parser::new(chunk.format, chunk.layout.clone());
        let (mut lines, mut records, mut bad) = (0u64, 0u64, 0u64);
        let mut no = chunk.first_line;
        let data = &chunk.data;
        let mut start = 0;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |n| start + n);
            let line = &data[start..end];
            lines += 1;
            match parser.line(line) {
                Ok(Some(r)) => {
                    records += 1;
                    agg.add(&r, opts.routes);
                }
                Ok(None) => {}
                Err(reason) => {
                    bad += 1;
                    agg.malformed(&chunk.name, no, reason, line);
                }
            }
            no += 1;
            start = end + 1;
        }
        let f = agg.file(chunk.file);
        f.lines += lines;
        f.records += records;
        f.malformed += bad;
    }
    agg
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::routes::Routes;

    fn routes() -> Routes {
        Routes::new(r"\.[0-9a-f]{12}(\.[A-Za-z0-9]+)?$", [], None, &[]).unwrap()
    }

    fn opts(routes: &Routes, workers: usize) -> ReadOptions<'_> {
        ReadOptions {
            format: None,
            fields: None,
            routes,
            workers,
            width: None,
            sketch: 64,
        }
    }

    /// Several chunks' worth of lines, plain and gzipped (two members), with malformed lines at known
    /// places and a CloudFront header change mid-file: the same counts and `file:line`s on 1 and 3
    /// workers.
    #[test]
    fn chunks_keep_counts_line_numbers_and_headers() {
        let t = tempfile::tempdir().unwrap();
        let mut text = String::new();
        let mut bad_lines = Vec::new();
        let mut misses = 0;
        for i in 1..=60_000u64 {
            if i % 20_011 == 0 {
                text.push_str("this is not a log line\n");
                bad_lines.push(i);
            } else {
                misses += u64::from(i % 4 == 0);
                text.push_str(&format!(
                    "10.0.0.1 - - [01/Jan/2024:00:{:02}:00 +0000] \"GET /p{} HTTP/1.1\" 200 {} \"-\" \"agent\" {}\n",
                    i % 60,
                    i % 50,
                    i % 7,
                    if i % 4 == 0 { "MISS" } else { "HIT" }
                ));
            }
        }
        assert!(text.len() > 3 * CHUNK);
        let plain = t.path().join("a.log");
        std::fs::write(&plain, &text).unwrap();
        let gz = t.path().join("a.log.gz");
        let (first, second) = text.split_at(text.len() / 2);
        let mut f = std::fs::File::create(&gz).unwrap();
        for part in [first, second] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            f.write_all(&e.finish().unwrap()).unwrap();
        }
        let r = routes();
        for workers in [1, 3] {
            for p in [&plain, &gz] {
                let (agg, opened) = read_all(std::slice::from_ref(p), &opts(&r, workers)).unwrap();
                assert_eq!(opened[0].format, Format::Nginx);
                assert_eq!(opened[0].gzip, p == &gz);
                assert_eq!(agg.files[0].lines, 60_000);
                assert_eq!(agg.total.requests, 60_000 - bad_lines.len() as u64);
                assert_eq!(agg.total.cache[crate::Cache::Miss as usize], misses);
                let mut lines: Vec<u64> = agg.samples.iter().map(|s| s.line).collect();
                lines.sort();
                assert_eq!(lines, bad_lines, "{workers} workers, {}", p.display());
            }
        }

        // CloudFront: a second `#Fields:` header (columns reordered) far into the file.
        let mut cf = String::from(
            "#Version: 1.0\n#Fields: date time sc-status cs-uri-stem sc-bytes x-edge-result-type\n",
        );
        for _ in 0..40_000 {
            cf.push_str("2024-01-01\t00:00:00\t200\t/a\t10\tHit\n");
        }
        cf.push_str("#Fields: sc-bytes cs-uri-stem sc-status x-edge-result-type\n");
        for _ in 0..40_000 {
            cf.push_str("20\t/b\t404\tMiss\n");
        }
        let p = t.path().join("cf.log");
        std::fs::write(&p, &cf).unwrap();
        let (agg, _) = read_all(&[p], &opts(&r, 2)).unwrap();
        assert_eq!(agg.malformed, 0, "{:?}", agg.samples.first());
        assert_eq!(agg.total.requests, 80_000);
        assert_eq!(agg.total.bytes, 40_000 * 30);
        assert_eq!(agg.total.status[4], 40_000);
        assert_eq!(agg.untimed, 40_000);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let r = routes();
        let e = read_all(&[PathBuf::from("/no/such.log")], &opts(&r, 1)).unwrap_err();
        assert!(e.to_string().contains("/no/such.log"), "{e}");
    }
}
