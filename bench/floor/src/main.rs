//! Benchmark floor for `staleguard build`: the least work any precompressing build must do.
//!
//! Walks a folder, reads every file, dedups contents by blake3, skips the already-compressed
//! extensions WhiteNoise skips (plus a few more), and compresses each distinct content once with
//! brotli (quality 11, lgwin 22: Python `brotli.compress` defaults, which WhiteNoise uses) and
//! gzip level 9, on every core, largest jobs first. Nothing is written: only the work is timed.
//!
//! Usage: staleguard-bench-floor DIR [--threads N]
//! Prints `key=value` lines on stdout (parsed by bench/build.sh), a human summary on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Extensions WhiteNoise's `Compressor.SKIP_COMPRESS_EXTENSIONS` skips, plus avif zst 7z rar mp3 ogg.
const SKIP_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "zip", "gz", "tgz", "bz2", "tbz", "xz", "br", "swf", "flv",
    "woff", "woff2", "3gp", "3gpp", "asf", "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv",
    // not in WhiteNoise's list, but just as pointless to compress:
    "avif", "zst", "7z", "rar", "mp3", "ogg",
];

/// Linux USER_HZ: the unit of utime/stime in /proc/self/stat (100 on every mainstream kernel build).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Brotli,
    Gzip,
}

struct Job {
    content: usize,
    codec: Codec,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut threads: Option<usize> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => {
                threads = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| die("--threads needs a number")),
                )
            }
            "-h" | "--help" => {
                eprintln!("usage: staleguard-bench-floor DIR [--threads N]");
                return;
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => die(&format!("unexpected argument {a:?}")),
        }
    }
    let dir = dir.unwrap_or_else(|| die("usage: staleguard-bench-floor DIR [--threads N]"));
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .unwrap_or_else(|e| die(&format!("thread pool: {e}")));
    }
    let threads = rayon::current_num_threads();

    let t0 = Instant::now();
    let cpu0 = cpu_seconds();

    // 1. Walk (std only), read and hash every file; dedup by content.
    let mut paths = Vec::new();
    walk(&dir, &mut paths);
    let files_total = paths.len();
    let read: Vec<(PathBuf, Vec<u8>)> = {
        use rayon::prelude::*;
        paths
            .into_par_iter()
            .map(|p| {
                let data = std::fs::read(&p).unwrap_or_else(|e| die(&format!("read {}: {e}", p.display())));
                (p, data)
            })
            .collect()
    };
    let bytes_total: u64 = read.iter().map(|(_, d)| d.len() as u64).sum();
    let mut seen = std::collections::HashSet::new();
    let mut contents: Vec<Vec<u8>> = Vec::new();
    let mut skipped_files = 0usize;
    for (p, data) in read {
        if skip_extension(&p) {
            skipped_files += 1;
            continue;
        }
        if seen.insert(*blake3::hash(&data).as_bytes()) {
            contents.push(data);
        }
    }
    let distinct_bytes: u64 = contents.iter().map(|d| d.len() as u64).sum();
    let t_prepared = t0.elapsed().as_secs_f64();

    // 2. Jobs, longest first: every brotli job by size descending, then the (much cheaper) gzip
    //    jobs by size descending, so the longest job never starts last (greedy LPT scheduling).
    let mut jobs: Vec<Job> = Vec::with_capacity(contents.len() * 2);
    for codec in [Codec::Brotli, Codec::Gzip] {
        let mut idx: Vec<usize> = (0..contents.len()).collect();
        idx.sort_by_key(|&i| std::cmp::Reverse(contents[i].len()));
        jobs.extend(idx.into_iter().map(|content| Job { content, codec }));
    }

    // 3. Every worker thread pulls the next job off a shared counter (exact largest-first order,
    //    unlike par_iter's range splitting).
    let next = AtomicUsize::new(0);
    let br_out = AtomicUsize::new(0);
    let gz_out = AtomicUsize::new(0);
    let tc = Instant::now();
    rayon::scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let data = &contents[job.content];
                    match job.codec {
                        Codec::Brotli => {
                            br_out.fetch_add(brotli_len(data), Ordering::Relaxed);
                        }
                        Codec::Gzip => {
                            gz_out.fetch_add(gzip_len(data), Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let compress_wall = tc.elapsed().as_secs_f64();
    let wall = t0.elapsed().as_secs_f64();
    let (user, sys) = cpu_seconds();
    let (user, sys) = (user - cpu0.0, sys - cpu0.1);

    let out = std::io::stdout();
    let mut o = out.lock();
    let _ = writeln!(o, "threads={threads}");
    let _ = writeln!(o, "files={files_total}");
    let _ = writeln!(o, "bytes={bytes_total}");
    let _ = writeln!(o, "skipped_files={skipped_files}");
    let _ = writeln!(o, "distinct_contents={}", contents.len());
    let _ = writeln!(o, "distinct_bytes={distinct_bytes}");
    let _ = writeln!(o, "brotli_bytes={}", br_out.load(Ordering::Relaxed));
    let _ = writeln!(o, "gzip_bytes={}", gz_out.load(Ordering::Relaxed));
    let _ = writeln!(o, "prepare_wall={t_prepared:.3}");
    let _ = writeln!(o, "compress_wall={compress_wall:.3}");
    let _ = writeln!(o, "wall={wall:.3}");
    let _ = writeln!(o, "user={user:.2}");
    let _ = writeln!(o, "sys={sys:.2}");
    let _ = writeln!(o, "cpu_over_wall={:.2}", (user + sys) / wall.max(1e-9));
    eprintln!(
        "floor (rust): {files_total} files, {} distinct compressible contents ({:.1} MB), {threads} threads: \
         wall {wall:.2}s (compress {compress_wall:.2}s), user {user:.2}s, sys {sys:.2}s, cpu/wall {:.2}",
        contents.len(),
        distinct_bytes as f64 / 1e6,
        (user + sys) / wall.max(1e-9)
    );
}

fn die(msg: &str) -> ! {
    eprintln!("staleguard-bench-floor: error: {msg}");
    std::process::exit(2)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| die(&format!("read_dir {}: {e}", dir.display())));
    for entry in rd {
        let entry = entry.unwrap_or_else(|e| die(&format!("read_dir {}: {e}", dir.display())));
        let ft = entry.file_type().unwrap_or_else(|e| die(&format!("stat {}: {e}", entry.path().display())));
        if ft.is_dir() {
            walk(&entry.path(), out);
        } else if ft.is_file() {
            out.push(entry.path());
        } else if ft.is_symlink() && entry.path().is_file() {
            out.push(entry.path());
        }
    }
}

fn skip_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SKIP_EXTENSIONS.iter().any(|s| s.eq_ignore_ascii_case(e)))
}

fn brotli_len(data: &[u8]) -> usize {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        mode: brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_GENERIC,
        size_hint: data.len(),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    let mut input = data;
    brotli::BrotliCompress(&mut input, &mut out, &params).unwrap_or_else(|e| die(&format!("brotli: {e}")));
    out.len()
}

fn gzip_len(data: &[u8]) -> usize {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(data.len() / 3 + 64), flate2::Compression::new(9));
    enc.write_all(data).unwrap_or_else(|e| die(&format!("gzip: {e}")));
    enc.finish().unwrap_or_else(|e| die(&format!("gzip: {e}"))).len()
}

/// (user, sys) CPU seconds of the whole process (all threads, live and exited), from
/// /proc/self/stat fields 14 (utime) and 15 (stime), in clock ticks.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 2 (comm) is parenthesised and may hold spaces: count fields after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field N is f[N - 3].
    let ticks = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(14) / CLOCK_TICKS_PER_SEC, ticks(15) / CLOCK_TICKS_PER_SEC)
}
