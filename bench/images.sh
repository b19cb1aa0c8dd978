#!/usr/bin/env bash
# bench/images.sh: responsive image variants, staleguard (`[build.images]`) vs sharp (npm, libvips),
# same images, widths, formats and qualities, same run; wall time, total bytes and SSIM of every variant
# against its source, as ratios.
#
#   bench/images.sh                 (BENCH_RUNS=3: best of N cold runs of each tool)
#   BENCH_AVIF=1 bench/images.sh    (AVIF variants too: staleguard built with `--features avif`
#                                    (rav1e, speed 6, quality.avif 80; BENCH_AVIF_QUALITY=N overrides),
#                                    sharp's libaom at effort 4 and its default quality 60)
#   BENCH_MOZJPEG=1 bench/images.sh (JPEG variants through mozjpeg on both sides: staleguard built with
#                                    `--features mozjpeg`, sharp with `mozjpeg: true`)
#
# The images: the photo corpus of the integration test (crates/staleguard/tests/it/fixtures/photos,
# from Debian's gnome-backgrounds 43.1-1). The variants (what `[build.images]` makes with
# `widths = [320, 640, 1024]`): per image of width W, WebP at W and at each width below W, and the
# source's own format (JPEG, PNG; WebP for a WebP source) at each width below W; WebP and JPEG at
# quality 80, PNG at compression 9 with adaptive filters (staleguard: oxipng preset 2, lossless); Lanczos3;
# EXIF orientation applied; no metadata.
# sharp: one pipeline per variant (`sharp(buf).rotate().resize(w)` then `.webp({quality: 80})`,
# `.jpeg({quality: 80})` (libjpeg-turbo, optimised Huffman coding, 4:2:0) or `.png({compressionLevel: 9,
# adaptiveFiltering: true})`), all at once (libuv pool, sharp's default concurrency = cores).
# staleguard: `cargo run --release -p staleguard-assets --example images_build` (the library's `build`,
# as `staleguard build` calls it) with a fresh cache each run.
# SSIM: scikit-image's `structural_similarity` (PyPI, in a venv) of each variant against its source
# resized to the variant's size by Pillow's Lanczos (the same reference for both tools), in 8-bit RGB.
#
# Needs node/npm, python3, cargo. Work files in bench/work/images/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/bench/work/images"
photos="$root/crates/staleguard/tests/it/fixtures/photos"
runs="${BENCH_RUNS:-3}"
avif="${BENCH_AVIF:-0}"
mozjpeg="${BENCH_MOZJPEG:-0}"
mkdir -p "$work"
step() { printf '\n==> %s\n' "$*" >&2; }

step "sources"
rm -rf "$work/src" && mkdir -p "$work/src"
cp "$photos"/*.jpg "$photos"/*.png "$photos"/*.webp "$work/src/"
ls -l "$work/src" >&2

step "sharp (npm)"
if [ ! -d "$work/node/node_modules/sharp" ]; then
  mkdir -p "$work/node"
  (cd "$work/node" && npm init -y >/dev/null && npm install --no-audit --no-fund sharp@0.34 >/dev/null)
fi
sharp_version="$(node -p "require('$work/node/node_modules/sharp/package.json').version")"
cat > "$work/node/variants.js" <<'JS'
// node variants.js SRC OUT: the variants `[build.images]` makes, through sharp.
const fs = require('fs'), path = require('path'), sharp = require('sharp');
const [src, out] = process.argv.slice(2);
const widths = [320, 640, 1024];
const avif = process.env.BENCH_AVIF === '1';
const mozjpeg = process.env.BENCH_MOZJPEG === '1';
(async () => {
  fs.mkdirSync(out, { recursive: true });
  const jobs = [];
  for (const name of fs.readdirSync(src).sort()) {
    const buf = fs.readFileSync(path.join(src, name));
    const meta = await sharp(buf).metadata();
    const W = (meta.orientation || 1) >= 5 ? meta.height : meta.width;
    const ext = path.extname(name).slice(1).toLowerCase();
    const fallback = ext === 'jpg' || ext === 'jpeg' ? 'jpeg' : ext === 'webp' ? 'webp' : 'png';
    const stem = name.replace(/\.[^.]+$/, '');
    const plan = [];
    if (avif) plan.push([W, 'avif']);
    if (fallback !== 'webp') plan.push([W, 'webp']);
    for (const w of widths.filter((w) => w < W)) {
      if (avif) plan.push([w, 'avif']);
      plan.push([w, 'webp']);
      if (fallback !== 'webp') plan.push([w, fallback]);
    }
    for (const [w, f] of plan) {
      let p = sharp(buf).rotate().resize({ width: w, kernel: 'lanczos3' });
      p = f === 'avif' ? p.avif({ quality: 60, effort: 4 })
        : f === 'webp' ? p.webp({ quality: 80 })
        : f === 'jpeg' ? p.jpeg({ quality: 80, mozjpeg })
        : p.png({ compressionLevel: 9, adaptiveFiltering: true });
      const e = f === 'jpeg' ? 'jpg' : f;
      jobs.push(p.toFile(path.join(out, `${stem}.${w}.${e}`)));
    }
  }
  await Promise.all(jobs);
})().catch((e) => { console.error(e); process.exit(1); });
JS

step "staleguard (cargo build --release --example images_build)"
features=() formats=webp
if [ "$avif" = 1 ]; then features+=(--features avif) formats=avif,webp; fi
if [ "$mozjpeg" = 1 ]; then features+=(--features mozjpeg); fi
(cd "$root" && cargo build -q --release -p staleguard-assets "${features[@]}" --example images_build)
target="${CARGO_TARGET_DIR:-$root/target}"
sg="$target/release/examples/images_build"

step "scikit-image (PyPI, venv)"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q 'scikit-image==0.25.*' 'pillow==11.*'
fi

best() { sort -n | head -1; }
now() { date +%s.%N; }
sharp_times=() sg_times=()
for i in $(seq "$runs"); do
  rm -rf "$work/sharp"
  t0=$(now); BENCH_AVIF="$avif" BENCH_MOZJPEG="$mozjpeg" node "$work/node/variants.js" "$work/src" "$work/sharp"; t1=$(now)
  sharp_times+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$work/sg" "$work/sg.cache"
  t0=$(now); "$sg" "$work/src" "$work/sg" "$work/sg.cache" "$formats" > "$work/sg-report.json"; t1=$(now)
  sg_times+=("$(echo "$t1 - $t0" | bc)")
  printf '    run %s: sharp %.3f s, staleguard %.3f s\n' "$i" "${sharp_times[-1]}" "${sg_times[-1]}" >&2
done
sharp_s=$(printf '%s\n' "${sharp_times[@]}" | best)
sg_s=$(printf '%s\n' "${sg_times[@]}" | best)

step "bytes and SSIM"
"$work/venv/bin/python" - "$work" "$sharp_s" "$sg_s" "$sharp_version" > "$work/images-results.md" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image, ImageOps
from skimage.metrics import structural_similarity
work, sharp_s, sg_s, sharp_version = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
m = json.load(open(os.path.join(work, "sg", "staleguard.manifest.json")))
rows = []
for logical, variants in sorted(m["images"].items()):
    name = logical.split("/")[-1]
    src = ImageOps.exif_transpose(Image.open(os.path.join(work, "src", name)))
    icc = src.info.get("icc_profile")
    if icc:
        # Both tools convert to sRGB: so does the reference (LittleCMS, through Pillow).
        from io import BytesIO
        from PIL import ImageCms
        src = ImageCms.profileToProfile(src.convert("RGB"), ImageCms.ImageCmsProfile(BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB")
    src = src.convert("RGB")
    stem = name.rsplit(".", 1)[0]
    for v in variants:
        ext = "jpg" if v["format"] == "jpeg" else v["format"]
        ours = os.path.join(work, "sg", v["path"])
        theirs = os.path.join(work, "sharp", f"{stem}.{v['width']}.{ext}")
        ref = np.asarray(src.resize((v["width"], v["height"]), Image.LANCZOS))
        def ssim(p):
            img = Image.open(p).convert("RGB")
            if img.size != (v["width"], v["height"]):
                img = img.resize((v["width"], v["height"]), Image.LANCZOS)
            return structural_similarity(ref, np.asarray(img), channel_axis=2, data_range=255)
        rows.append((f"{stem}.{v['width']}.{ext}", os.path.getsize(ours), os.path.getsize(theirs), ssim(ours), ssim(theirs)))
sg_bytes = sum(r[1] for r in rows); sharp_bytes = sum(r[2] for r in rows)
sg_q = sum(r[3] for r in rows) / len(rows); sharp_q = sum(r[4] for r in rows) / len(rows)
print(f"# bench/images.sh: {len(rows)} variants of {len(m['images'])} images, sharp {sharp_version}\n")
print("| variant | staleguard bytes | sharp bytes | staleguard SSIM | sharp SSIM |")
print("| --- | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.4f} | {r[4]:.4f} |")
print()
print("| measure | staleguard | sharp | ratio | target |")
print("| --- | ---: | ---: | ---: | --- |")
speed = sharp_s / sg_s
print(f"| wall time, best of runs (s) | {sg_s:.3f} | {sharp_s:.3f} | sharp/staleguard = {speed:.2f}x | >= 1.0x: {'met' if speed >= 1.0 else 'missed'} |")
br = sg_bytes / sharp_bytes
print(f"| total bytes | {sg_bytes} | {sharp_bytes} | staleguard/sharp = {br:.3f} | <= 1.0: {'met' if br <= 1.0 else 'missed'} |")
qr = sg_q / sharp_q
print(f"| mean SSIM | {sg_q:.4f} | {sharp_q:.4f} | staleguard/sharp = {qr:.4f} | >= 0.99: {'met' if qr >= 0.99 else 'missed'} |")
print()
print("| format | variants | staleguard bytes | sharp bytes | bytes ratio | staleguard SSIM | sharp SSIM |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for ext in sorted({r[0].rsplit(".", 1)[1] for r in rows}):
    fr = [r for r in rows if r[0].endswith("." + ext)]
    a, b = sum(r[1] for r in fr), sum(r[2] for r in fr)
    qa, qb = sum(r[3] for r in fr) / len(fr), sum(r[4] for r in fr) / len(fr)
    print(f"| {ext} | {len(fr)} | {a} | {b} | {a / b:.3f} | {qa:.4f} | {qb:.4f} |")
PY
cat "$work/images-results.md"
