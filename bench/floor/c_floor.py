#!/usr/bin/env python3
"""Benchmark floor with Google's C brotli (the `brotli` module WhiteNoise uses) and C zlib.

Same rules as the Rust floor (bench/floor/src/main.rs): walk DIR, dedup file contents (hash of
content), skip the same already-compressed extensions, and compress each distinct content once with
brotli.compress(data) (quality 11, lgwin 22, generic mode: the defaults WhiteNoise relies on) and
gzip level 9 (mtime 0, as WhiteNoise does), on a multiprocessing.Pool(os.cpu_count()), largest
jobs first (all brotli jobs by size, then all gzip jobs by size; chunksize 1 so each worker takes
the next-largest job). Nothing is written.

Usage: c_floor.py DIR [--processes N]
Prints key=value lines on stdout (parsed by bench/build.sh), a summary on stderr.
"""

import gzip
import hashlib
import multiprocessing
import os
import sys
import time

import brotli

SKIP_EXTENSIONS = {
    # WhiteNoise's Compressor.SKIP_COMPRESS_EXTENSIONS
    "jpg", "jpeg", "png", "gif", "webp", "zip", "gz", "tgz", "bz2", "tbz", "xz", "br", "swf", "flv",
    "woff", "woff2", "3gp", "3gpp", "asf", "avi", "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv",
    # plus (same as the Rust floor)
    "avif", "zst", "7z", "rar", "mp3", "ogg",
}


def job(args):
    codec, path = args
    with open(path, "rb") as f:
        data = f.read()
    if codec == "br":
        return codec, len(brotli.compress(data))
    return codec, len(gzip.compress(data, compresslevel=9, mtime=0))


def main():
    argv = sys.argv[1:]
    processes = os.cpu_count() or 1
    if "--processes" in argv:
        i = argv.index("--processes")
        processes = int(argv[i + 1])
        del argv[i : i + 2]
    if len(argv) != 1:
        sys.exit("usage: c_floor.py DIR [--processes N]")
    root = argv[0]

    t0 = time.perf_counter()
    files = 0
    total = 0
    skipped = 0
    seen = set()
    distinct = []  # (size, path) of one file per distinct content
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path):
                continue
            files += 1
            with open(path, "rb") as f:
                data = f.read()
            total += len(data)
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if ext in SKIP_EXTENSIONS:
                skipped += 1
                continue
            digest = hashlib.blake2b(data, digest_size=32).digest()
            if digest not in seen:
                seen.add(digest)
                distinct.append((len(data), path))
    distinct.sort(key=lambda sp: sp[0], reverse=True)
    jobs = [("br", p) for _s, p in distinct] + [("gz", p) for _s, p in distinct]
    prepare = time.perf_counter() - t0

    tc = time.perf_counter()
    out = {"br": 0, "gz": 0}
    with multiprocessing.Pool(processes) as pool:
        for codec, n in pool.imap_unordered(job, jobs, chunksize=1):
            out[codec] += n
        pool.close()
        pool.join()
    compress_wall = time.perf_counter() - tc
    wall = time.perf_counter() - t0
    t = os.times()
    user = t.user + t.children_user
    sys_ = t.system + t.children_system

    print(f"processes={processes}")
    print(f"files={files}")
    print(f"bytes={total}")
    print(f"skipped_files={skipped}")
    print(f"distinct_contents={len(distinct)}")
    print(f"distinct_bytes={sum(s for s, _p in distinct)}")
    print(f"brotli_bytes={out['br']}")
    print(f"gzip_bytes={out['gz']}")
    print(f"prepare_wall={prepare:.3f}")
    print(f"compress_wall={compress_wall:.3f}")
    print(f"wall={wall:.3f}")
    print(f"user={user:.2f}")
    print(f"sys={sys_:.2f}")
    print(f"cpu_over_wall={(user + sys_) / max(wall, 1e-9):.2f}")
    print(
        f"floor (C brotli): {files} files, {len(distinct)} distinct compressible contents "
        f"({sum(s for s, _p in distinct) / 1e6:.1f} MB), {processes} processes: wall {wall:.2f}s "
        f"(compress {compress_wall:.2f}s), user {user:.2f}s, sys {sys_:.2f}s, "
        f"cpu/wall {(user + sys_) / max(wall, 1e-9):.2f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
