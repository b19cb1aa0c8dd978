#!/usr/bin/env bash
# bench/deploy.sh: `staleguard deploy` against `aws s3 sync`, both uploading the same `staleguard build`
# output to S3 emulated by moto on this machine, in one run: a first deploy of a generated 10,000-file
# site, then redeploys after 10 source files changed. Prints seconds, the HTTP requests each tool sent
# (counted from moto's access log) and the objects it uploaded, side by side. See bench/README.md.
#
# Targets:
#   redeploy after a 10-file change: staleguard >= 10 x faster than `aws s3 sync`'s re-sync
#   requests on that redeploy: proportional to the change (no LIST of the bucket; the counts are
#   reported whatever they are)
#
# Environment:
#   BENCH_ROUNDS=3            redeploy rounds; each changes 10 other source files, rebuilds, then runs both
#                             tools (order alternating: staleguard first in odd rounds); the report shows medians
#   BENCH_SMALL=1             a 1,000-file site (10 folders instead of 100), for testing the script
#   STALEGUARD_BIN=PATH       use this binary instead of `cargo build --profile dist --locked -p staleguard`
#   STALEGUARD_VENV           Python venv with moto and awscli (see scripts/pyenv.sh, scripts/peers/moto.sh)
#   BENCH_WAIT_IDLE=SECONDS   first wait (at most that long) for the 1-minute load average < 0.5
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
cd "$ROOT"

WORK="$BENCH_DIR/work"
LOGS="$WORK/logs"
mkdir -p "$WORK" "$LOGS"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

ROUNDS="${BENCH_ROUNDS:-3}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
if [ "${BENCH_SMALL:-0}" = 1 ]; then
  FOLDERS=10
  VARIANT="small (BENCH_SMALL=1)"
else
  FOLDERS=100
  VARIANT="full"
fi
SEED=20261121
MOTO_SH="$ROOT/scripts/peers/moto.sh"
SITE="$WORK/deploy-site"        # generated sources
DW="$WORK/deploy"               # everything else: config, output, cache, moto state, per-run files
OUT="$DW/out"
CACHE="$DW/cache"
MOTO_DIR="$DW/moto"
RUNS="$DW/runs"
CONF="$DW/staleguard.toml"
GEN="$DW/gen-site.py"
REPORT="$WORK/deploy-results.md"
B_SG=sg-bench
B_AWS=aws-bench
PREFIX=site

NPROC="$(nproc)"
START_DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

# --- moto, stopped by PID on exit (also on error or Ctrl-C) -------------------------------------
MOTO_PID=""
MOTO_STATE=""
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
cleanup() {
  [ -n "$MOTO_PID" ] || return 0
  if alive "$MOTO_PID"; then
    # moto.sh stop checks that the PID in its pid file is the moto_server it started for that state dir.
    "$MOTO_SH" stop "$MOTO_STATE" >/dev/null 2>&1 || true
  fi
  if alive "$MOTO_PID"; then
    kill -TERM "$MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$MOTO_PID" || break; sleep 0.1; done
    alive "$MOTO_PID" && kill -KILL "$MOTO_PID" 2>/dev/null
  fi
  info "stopped moto_server (pid $MOTO_PID)"
  MOTO_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

range() { # "min-max" of space-separated numbers
  tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | sed -n '1p;$p' | paste -sd- -
}

step "staleguard deploy vs aws s3 sync against moto ($VARIANT site), $NPROC cores, timer: $TIMER"
info "work dir: $DW (site: $SITE)"
wait_idle
if awk -v l="${LOAD_START%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  warn "load average is $LOAD_START before starting: other processes are using the CPU, timings will be noisy"
fi

# ------------------------------------------------------------------------------------------------
step "Tools"
"$MOTO_SH" install || die "scripts/peers/moto.sh install failed"
# shellcheck source=scripts/pyenv.sh
source "$ROOT/scripts/pyenv.sh"
VPY="$(staleguard_venv)/bin/python"
AWS="$("$MOTO_SH" aws-bin)"
[ -x "$VPY" ] || die "no python in the venv $(staleguard_venv)"
staleguard_bin "$LOGS/cargo-staleguard.log"
V_SG="$("$SG" --version 2>/dev/null | head -n 1 || true)"
V_AWS="$("$AWS" --version 2>&1 | head -n 1)"
V_MOTO="$("$VPY" -c 'import moto; print(moto.__version__)')"
V_PY="$("$VPY" -c 'import platform; print(platform.python_version())')"
info "staleguard: $SG (${V_SG:-?})"
info "aws: $AWS ($V_AWS)"
info "moto $V_MOTO (Python $V_PY)"

mkdir -p "$DW"
rm -rf "$RUNS"
mkdir -p "$RUNS"
# An explicit, empty config: staleguard's defaults whatever staleguard.toml a parent folder may hold.
printf '# Written by bench/deploy.sh: staleguard defaults.\n' >"$CONF"
# The AWS CLI reads no ~/.aws/config (which could change max_concurrent_requests and the like).
: >"$DW/aws-config"
export AWS_CONFIG_FILE="$DW/aws-config" AWS_SHARED_CREDENTIALS_FILE="$DW/aws-config"
cd "$DW"

# ------------------------------------------------------------------------------------------------
step "Site: $((FOLDERS * 100)) files in $FOLDERS folders (python, seed $SEED)"
cat >"$GEN" <<'EOF'
# Written by bench/deploy.sh. Usage: gen-site.py gen DIR FOLDERS SEED | mutate DIR FOLDERS SEED ROUND
# Each folder secNN/ holds 90 binary assets a000..a089 (random bytes, 1-8 KiB: png/webp/jpg/woff2,
# which staleguard does not compress), style0..2.css, app0..2.js and page0..3.html.
#   page P references a(10P)..a(10P+9), style(P%3).css, app(P%3).js and pages of other folders;
#   style K references a(40+5K)..a(44+5K); a055..a089 are referenced by nothing.
# `mutate` changes 10 files, different ones each round: 5 pages (a paragraph added), 2 stylesheets
# (a rule appended), 3 assets (new random bytes and size: one a page references, one a stylesheet
# references, one unreferenced). It prints the changed paths.
import os
import random
import sys

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco").split()
EXTS = ["png", "png", "png", "png", "webp", "webp", "jpg", "jpg", "woff2"]
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff\xe0", "webp": b"RIFF\0\0\0\0WEBP", "woff2": b"wOF2"}
N_ASSETS, N_CSS, N_JS, N_PAGES = 90, 3, 3, 4


def asset(i):
    return f"a{i:03d}.{EXTS[i % len(EXTS)]}"


def folder(d):
    return f"sec{d:02d}"


def binary(rng, name):
    ext = name.rsplit(".", 1)[1]
    size = rng.randint(1024, 8192)
    return MAGIC[ext] + rng.randbytes(size - len(MAGIC[ext]))


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def css(rng, d, k):
    rules = [f"/* section {d} stylesheet {k} */"]
    for i in range(5):
        rules.append(f".bg-{k}-{i} {{ background: url({asset(40 + 5 * k + i)}) no-repeat center; }}")
    for j in range(rng.randint(40, 110)):
        rules.append(f".c{d}-{k}-{j} {{ margin: {rng.randint(0, 40)}px {rng.randint(0, 40)}px; "
                     f"color: #{rng.randrange(16**6):06x}; font-size: {rng.randint(10, 30)}px; }}")
    return "\n".join(rules) + "\n"


def js(rng, d, k):
    lines = [f"// section {d} module {k}", "(function () {", "  'use strict';"]
    for j in range(rng.randint(40, 110)):
        lines.append(f"  function f{j}_{rng.randrange(10**6)}(a, b) {{ return a * {rng.randint(1, 99)} + b - "
                     f"{rng.randint(1, 99)}; /* {words(rng, 4)} */ }}")
    lines.append("})();")
    return "\n".join(lines) + "\n"


def page(rng, d, p, folders):
    head, body = [], []
    for i in range(10 * p, 10 * p + 10):
        name = asset(i)
        if name.endswith(".woff2"):
            head.append(f'  <link rel="preload" href="{name}" as="font" type="font/woff2" crossorigin>')
        else:
            body.append(f'    <img src="{name}" alt="{words(rng, 2)}">')
    nav = " ".join(f'<a href="../{folder((d + j) % folders)}/page{p}.html">{(d + j) % folders}</a>'
                   for j in range(1, 6))
    paras = "\n".join(f"    <p>{words(rng, rng.randint(30, 80))}</p>" for _ in range(rng.randint(4, 12)))
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Section {d} page {p}</title>
  <link rel="stylesheet" href="style{p % 3}.css">
  <script src="app{p % 3}.js" defer></script>
{chr(10).join(head)}
</head>
<body>
  <nav>{nav}</nav>
  <main>
{paras}
{chr(10).join(body)}
  </main>
</body>
</html>
"""


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def gen(root, folders, seed):
    rng = random.Random(seed)
    for d in range(folders):
        base = os.path.join(root, folder(d))
        for i in range(N_ASSETS):
            write(os.path.join(base, asset(i)), binary(rng, asset(i)))
        for k in range(N_CSS):
            write(os.path.join(base, f"style{k}.css"), css(rng, d, k))
        for k in range(N_JS):
            write(os.path.join(base, f"app{k}.js"), js(rng, d, k))
        for p in range(N_PAGES):
            write(os.path.join(base, f"page{p}.html"), page(rng, d, p, folders))


def mutate(root, folders, seed, rnd):
    pools = random.Random(seed + 1)  # the same shuffled pools every round; round R takes the R-th slice
    def pool(items):
        items = list(items)
        pools.shuffle(items)
        return items
    pages = pool((d, f"page{p}.html") for d in range(folders) for p in range(N_PAGES))
    styles = pool((d, f"style{k}.css") for d in range(folders) for k in range(N_CSS))
    by_page = pool((d, asset(i)) for d in range(folders) for i in range(0, 40))
    by_css = pool((d, asset(i)) for d in range(folders) for i in range(40, 55))
    unref = pool((d, asset(i)) for d in range(folders) for i in range(55, N_ASSETS))
    rng = random.Random(seed * 1000 + rnd)
    r = rnd - 1
    changed = []
    for j in range(5):
        d, name = pages[(5 * r + j) % len(pages)]
        path = os.path.join(root, folder(d), name)
        text = open(path, encoding="utf-8").read()
        text = text.replace("  </main>", f"    <p>Round {rnd} update: {words(rng, 20)}</p>\n  </main>", 1)
        write(path, text)
        changed.append(path)
    for j in range(2):
        d, name = styles[(2 * r + j) % len(styles)]
        path = os.path.join(root, folder(d), name)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f".round-{rnd}-{j} {{ color: #{rng.randrange(16**6):06x}; }}\n")
        changed.append(path)
    for p in (by_page, by_css, unref):
        d, name = p[r % len(p)]
        path = os.path.join(root, folder(d), name)
        write(path, binary(rng, name))
        changed.append(path)
    for c in changed:
        print(os.path.relpath(c, root))


if __name__ == "__main__":
    cmd, root, folders, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if cmd == "gen":
        gen(root, folders, seed)
    elif cmd == "mutate":
        mutate(root, folders, seed, int(sys.argv[5]))
    else:
        sys.exit(f"unknown command {cmd}")
EOF
rm -rf "$SITE"
"$VPY" "$GEN" gen "$SITE" "$FOLDERS" "$SEED" || die "generating the site failed"
read -r SITE_FILES SITE_BYTES < <(dir_stats "$SITE")
site_kind() { # site_kind REGEX -> "FILES BYTES" of the site's files whose name matches
  find "$SITE" -type f -regex "$1" -printf '%s\n' | awk '{ n++; s += $1 } END { printf "%d %d\n", n, s }'
}
read -r N_BIN B_BIN < <(site_kind '.*\.\(png\|webp\|jpg\|woff2\)')
read -r N_CSSJS B_CSSJS < <(site_kind '.*\.\(css\|js\)')
read -r N_HTML B_HTML < <(site_kind '.*\.html')
info "$SITE_FILES files, $(human_bytes "$SITE_BYTES"): $N_BIN binary assets ($(human_bytes "$B_BIN")), $N_CSSJS CSS/JS ($(human_bytes "$B_CSSJS")), $N_HTML HTML ($(human_bytes "$B_HTML"))"

# ------------------------------------------------------------------------------------------------
step "staleguard build (once; rebuilt after each round's change)"
SG_BUILD=("$SG" --config "$CONF" build "$SITE" -o "$OUT" --cache-dir "$CACHE" --json)
rm -rf "$OUT" "$CACHE"
run_timed build_cold "$RUNS/build-cold.json" "$LOGS/deploy-build-cold.err" "${SG_BUILD[@]}" ||
  die "staleguard build failed; command: ${SG_BUILD[*]} (cwd $DW)"
out_stats() { # -> "FILES BYTES BR GZ"
  find "$OUT" -type f -printf '%f %s\n' |
    awk '{ n++; s += $2 } /\.br / { br++ } /\.gz / { gz++ } END { printf "%d %d %d %d\n", n, s, br, gz }'
}
read -r OUT_FILES OUT_BYTES OUT_BR OUT_GZ < <(out_stats)
info "output: $OUT_FILES files, $(human_bytes "$OUT_BYTES"), of which $OUT_BR .br and $OUT_GZ .gz"

# ------------------------------------------------------------------------------------------------
step "moto"
eval "$(MOTO_WATCH_PID=$$ "$MOTO_SH" start "$MOTO_DIR")"
if [ -z "$MOTO_PID" ] || [ -z "${MOTO_URL:-}" ]; then die "scripts/peers/moto.sh start printed no MOTO_URL/MOTO_PID"; fi
MOTO_LOG="$MOTO_STATE/moto.log"
eval "$("$MOTO_SH" env "$MOTO_URL")"
"$AWS" s3 mb "s3://$B_SG" >/dev/null || die "aws s3 mb s3://$B_SG failed"
"$AWS" s3 mb "s3://$B_AWS" >/dev/null || die "aws s3 mb s3://$B_AWS failed"
info "buckets s3://$B_SG (staleguard) and s3://$B_AWS (aws s3 sync) on $MOTO_URL; log $MOTO_LOG"

REQ_FIELDS=(total GET HEAD PUT POST DELETE LIST non2xx other)
declare -A REQ=()   # REQ[name/field]
# measure NAME STDOUT CMD...: run_timed plus the requests moto served meanwhile (REQ[NAME/...]).
measure() {
  local name=$1 out=$2 before after i
  shift 2
  before="$(log_lines)"
  run_timed "$name" "$out" "$RUNS/$name.err" "$@" || return
  after="$(log_lines)"
  sed -n "$((before + 1)),${after}p" "$MOTO_LOG" >"$RUNS/$name.requests.log"
  local counts
  read -r -a counts < <(count_requests "$RUNS/$name.requests.log")
  for i in "${!REQ_FIELDS[@]}"; do REQ[$name/${REQ_FIELDS[$i]}]=${counts[$i]}; done
  info "$(printf '%-28s requests %6d: GET %d, HEAD %d, PUT %d, POST %d, DELETE %d, LIST %d (non-2xx %d)' "$name" \
    "${counts[0]}" "${counts[1]}" "${counts[2]}" "${counts[3]}" "${counts[4]}" "${counts[5]}" "${counts[6]}" "${counts[7]}")"
}

declare -A UPL=() UPB=() NOTE=()   # objects uploaded, bytes aws uploaded, notes per run
# sg_report NAME: reads staleguard's --json report of run NAME
sg_report() {
  "$VPY" - "$RUNS/$1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ups = r["plan"]["uploads"]
blobs = sum(1 for u in ups if u["key"].startswith(".staleguard/"))
print(len(ups), blobs, sum(u["size"] for u in ups), r["plan"]["kept"], r["objects"],
      len(r["gc"]["delete"]), str(r["up_to_date"]).lower(), f'{r["seconds"]:.3f}')
EOF
}
SG_DEPLOY=("$SG" --config "$CONF" deploy "$OUT" --store "s3://$B_SG/$PREFIX" --json)
AWS_SYNC=("$AWS" s3 sync "$OUT" "s3://$B_AWS/$PREFIX/" --no-progress)
sg_fail() {
  die "staleguard deploy failed ($1); command (cwd $DW, AWS_* from scripts/peers/moto.sh env $MOTO_URL): ${SG_DEPLOY[*]}"
}
run_sg() { # run_sg NAME
  measure "$1" "$RUNS/$1.json" "${SG_DEPLOY[@]}" || sg_fail "$1"
  local n blobs bytes kept objects gcdel uptodate secs
  read -r n blobs bytes kept objects gcdel uptodate secs < <(sg_report "$1") ||
    die "cannot read staleguard's JSON report $RUNS/$1.json"
  UPL[$1]=$n
  NOTE[$1]="$n uploads ($((n - blobs)) site objects + $blobs bundle(s) of rollback copies under .staleguard/, $(human_bytes "$bytes")), $kept kept, $objects objects in the deploy, GC deleted $gcdel; staleguard's own timer ${secs}s"
  info "staleguard: ${NOTE[$1]}"
  [ "$uptodate" = false ] || warn "$1: staleguard says the store was already up to date (nothing deployed?)"
  [ "$n" -gt 0 ] || warn "$1: staleguard uploaded nothing"
}
run_aws() { # run_aws NAME
  measure "$1" "$RUNS/$1.out" "${AWS_SYNC[@]}" || die "aws s3 sync failed ($1): ${AWS_SYNC[*]}"
  UPL[$1]="$(grep -c '^upload: ' "$RUNS/$1.out" || true)"
  sed -n "s|^upload: .* to s3://$B_AWS/$PREFIX/||p" "$RUNS/$1.out" | sort >"$RUNS/$1.uploaded"
  UPB[$1]="$( (cd "$OUT" && xargs -r -d '\n' stat -c %s <"$RUNS/$1.uploaded") | awk '{ s += $1 } END { print s + 0 }')"
  info "aws s3 sync: ${UPL[$1]} files uploaded ($(human_bytes "${UPB[$1]}"))"
}
bucket_objects() { # bucket_objects BUCKET
  "$AWS" s3 ls --recursive "s3://$1/$PREFIX/" | wc -l
}

# ------------------------------------------------------------------------------------------------
step "First deploy (empty buckets): staleguard, then aws s3 sync"
# S3 keeps LastModified to the second: wait so that every upload is stamped later than the build's
# files, else `aws s3 sync` would take files built in the same second as newer and upload them again.
sleep 1.1
run_sg sg_first
run_aws aws_first
FIRST_OBJ_SG="$(bucket_objects "$B_SG")"
FIRST_OBJ_AWS="$(bucket_objects "$B_AWS")"
info "objects in the buckets now: staleguard $FIRST_OBJ_SG, aws $FIRST_OBJ_AWS (the output has $OUT_FILES files)"

# ------------------------------------------------------------------------------------------------
declare -A CHANGED=() WROTE=() REMOVED=() ORDER=()
SG_TIMES="" AWS_TIMES=""
for r in $(seq 1 "$ROUNDS"); do
  step "Round $r/$ROUNDS: change 10 source files, rebuild, redeploy"
  CHANGED[$r]="$("$VPY" "$GEN" mutate "$SITE" "$FOLDERS" "$SEED" "$r" | paste -sd' ' -)"
  info "changed: ${CHANGED[$r]}"
  marker="$RUNS/round-$r.mark"
  : >"$marker"
  run_timed "build_r$r" "$RUNS/build-r$r.json" "$LOGS/deploy-build-r$r.err" "${SG_BUILD[@]}" ||
    die "staleguard build (round $r) failed; command: ${SG_BUILD[*]} (cwd $DW)"
  find "$OUT" -type f -newer "$marker" -printf '%P\n' | sort >"$RUNS/round-$r.written"
  WROTE[$r]="$(wc -l <"$RUNS/round-$r.written")"
  REMOVED[$r]="$("$VPY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("removed", "?"))' "$RUNS/build-r$r.json")"
  info "the rebuild wrote ${WROTE[$r]} output files and removed ${REMOVED[$r]}"
  sleep 1.1 # see the first deploy
  if [ $((r % 2)) -eq 1 ]; then
    ORDER[$r]="staleguard, aws"
    run_sg "sg_r$r"
    run_aws "aws_r$r"
  else
    ORDER[$r]="aws, staleguard"
    run_aws "aws_r$r"
    run_sg "sg_r$r"
  fi
  SG_TIMES+=" ${WALL[sg_r$r]}"
  AWS_TIMES+=" ${WALL[aws_r$r]}"
  # What aws s3 sync uploaded, against the files the rebuild wrote (size or mtime changed).
  missed="$(comm -23 "$RUNS/round-$r.written" "$RUNS/aws_r$r.uploaded" | wc -l)"
  extra="$(comm -13 "$RUNS/round-$r.written" "$RUNS/aws_r$r.uploaded" | wc -l)"
  NOTE[aws_r$r]="uploaded ${UPL[aws_r$r]} files ($(human_bytes "${UPB[aws_r$r]}")): of the ${WROTE[$r]} the rebuild wrote, $((${WROTE[$r]} - missed)) uploaded, $missed not; $extra others"
  info "aws s3 sync ${NOTE[aws_r$r]}"
  [ "$missed" -eq 0 ] || warn "round $r: aws s3 sync did not upload $missed file(s) the rebuild wrote (see $RUNS/round-$r.written, $RUNS/aws_r$r.uploaded)"
done

step "Objects in the buckets"
END_OBJ_SG="$(bucket_objects "$B_SG")"
END_OBJ_AWS="$(bucket_objects "$B_AWS")"
read -r END_OUT_FILES _ _ _ < <(out_stats)
info "staleguard bucket: $END_OBJ_SG objects, aws bucket: $END_OBJ_AWS objects; the output folder: $END_OUT_FILES files"
# staleguard's own state (deploy records, history, current pointer), sizes at the end of the run: what
# each staleguard run read and wrote of it besides the site's objects (the journal, deleted at the end
# of each deploy, is not counted).
{
  "$AWS" s3 ls "s3://$B_SG/$PREFIX/.staleguard/" | awk 'NF == 4 { print ".staleguard/" $4, $3 }'
  "$AWS" s3 ls "s3://$B_SG/$PREFIX/.staleguard/deploys/" | awk 'NF == 4 { print ".staleguard/deploys/" $4, $3 }'
} >"$RUNS/sg-state.sizes"
RECORD_SIZES="$(awk '$1 ~ /^\.staleguard\/deploys\// { printf "%s%.1f", sep, $2 / 1e6; sep = ", " }' "$RUNS/sg-state.sizes")"
state_io() { # state_io NAME -> "GETS GET_BYTES PUTS PUT_BYTES" of staleguard's state objects in run NAME
  awk -v pre="/$B_SG/$PREFIX/" 'NR == FNR { size[$1] = $2; next }
    match($0, /"(GET|PUT) [^ ]+ HTTP\/[0-9.]+" 2[0-9][0-9]/) {
      split(substr($0, RSTART + 1, RLENGTH - 1), f, " ")
      k = f[2]
      if (index(k, pre) != 1) next
      k = substr(k, length(pre) + 1)
      if (k !~ /^\.staleguard\// || k ~ /^\.staleguard\/objects\// || !(k in size)) next
      n[f[1]]++; b[f[1]] += size[k]
    }
    END { printf "%d %d %d %d\n", n["GET"], b["GET"], n["PUT"], b["PUT"] }' "$RUNS/sg-state.sizes" "$RUNS/$1.requests.log"
}
for n in sg_first $(seq -f 'sg_r%g' 1 "$ROUNDS"); do
  read -r sg_gets sg_getb sg_puts sg_putb < <(state_io "$n")
  NOTE[$n]+="; its state (records, history, current): $sg_gets GET ($(human_bytes "$sg_getb")), $sg_puts PUT ($(human_bytes "$sg_putb"))"
done
cleanup

# ------------------------------------------------------------------------------------------------
step "Report"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
SG_MED="$(median "$SG_TIMES")"
AWS_MED="$(median "$AWS_TIMES")"
RATIO="$(div "$AWS_MED" "$SG_MED" 1)"
# med_field TOOL FIELD: median over the rounds of REQ[TOOL_rR/FIELD] (or of UPL when FIELD=uploaded)
med_field() {
  local vals="" r
  for r in $(seq 1 "$ROUNDS"); do
    if [ "$2" = uploaded ]; then vals+=" ${UPL[$1_r$r]}"; else vals+=" ${REQ[$1_r$r/$2]}"; fi
  done
  median "$vals"
}
req_cells() { # req_cells NAME: "total | GET | HEAD | PUT | POST | DELETE | LIST"
  printf '%s | %s | %s | %s | %s | %s | %s' "${REQ[$1/total]}" "${REQ[$1/GET]}" "${REQ[$1/HEAD]}" \
    "${REQ[$1/PUT]}" "${REQ[$1/POST]}" "${REQ[$1/DELETE]}" "${REQ[$1/LIST]}"
}
main_row() { # main_row LABEL TOOL TIMES MEDIAN RATIO_CELL
  local f cells=""
  for f in total GET HEAD PUT POST DELETE LIST; do cells+=" $(med_field "$2" "$f") |"; done
  printf '| %s | %s | %s (%s) |%s %s | %s |\n' "$1" "${WALL[$2_first]}" "$4" "$(range "$3")" "$cells" \
    "$(med_field "$2" uploaded)" "$5"
}
{
  echo "# staleguard deploy vs aws s3 sync (S3 emulated by moto)"
  echo
  echo "- date: $START_DATE"
  echo "- machine: $NPROC cores (nproc), $CPU_MODEL; load average $LOAD_START at start, $LOAD_END at end"
  echo "- staleguard: ${V_SG:-n/a} ($SG); \`staleguard deploy OUT --store s3://$B_SG/$PREFIX --json\`, defaults (16 uploads in flight, GC on), empty config"
  echo "- aws: $V_AWS; \`aws s3 sync OUT s3://$B_AWS/$PREFIX/ --no-progress\`, defaults (no ~/.aws/config: 10 requests in flight; no --delete)"
  echo "- moto $V_MOTO (\`moto_server\`, Python $V_PY), one process on 127.0.0.1, both buckets in it; requests counted from its access log"
  echo "- site ($VARIANT): $SITE_FILES files, $(human_bytes "$SITE_BYTES") in $FOLDERS folders: $N_BIN binary assets (random bytes, 1-8 KiB, png/webp/jpg/woff2), $N_CSSJS CSS/JS, $N_HTML HTML pages referencing them"
  echo "- \`staleguard build\` output (what both tools upload): $OUT_FILES files, $(human_bytes "$OUT_BYTES"), of which $OUT_BR .br and $OUT_GZ .gz; cold build ${WALL[build_cold]} s"
  echo "- each round: 10 source files changed (5 pages, 2 stylesheets, 3 assets), incremental rebuild, then both tools (order alternating); $ROUNDS round(s)"
  echo
  echo "| tool | first deploy s | redeploy s, median (range) | redeploy requests | GET | HEAD | PUT | POST | DELETE | LIST | objects uploaded per redeploy | redeploy time aws / staleguard |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  main_row "staleguard deploy" sg "$SG_TIMES" "$SG_MED" "**$RATIO** (target >= 10: $(cmp_ok "$RATIO" ">=" 10))"
  main_row "aws s3 sync" aws "$AWS_TIMES" "$AWS_MED" ""
  echo
  echo "Redeploy columns: medians over the rounds, each column on its own. LIST: a GET of the bucket"
  echo "(ListObjectsV2, up to 1,000 keys a page); GET: a GET of one key. Seconds: wall time of the whole"
  echo "command, from outside (process start-up included)."
  echo
  echo "First deploy (empty buckets):"
  echo
  echo "| tool | seconds | requests | GET | HEAD | PUT | POST | DELETE | LIST | objects uploaded | objects in the bucket after |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  echo "| staleguard deploy | ${WALL[sg_first]} | $(req_cells sg_first) | ${UPL[sg_first]} | $FIRST_OBJ_SG |"
  echo "| aws s3 sync | ${WALL[aws_first]} | $(req_cells aws_first) | ${UPL[aws_first]} | $FIRST_OBJ_AWS |"
  echo
  echo "- staleguard: ${NOTE[sg_first]}"
  echo "- aws s3 sync: ${UPL[aws_first]} files uploaded ($(human_bytes "${UPB[aws_first]}"))"
  echo
  echo "Each redeploy:"
  echo
  echo "| round | tool (order) | seconds | requests | GET | HEAD | PUT | POST | DELETE | LIST | objects uploaded |"
  echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in $(seq 1 "$ROUNDS"); do
    for t in sg aws; do
      if [ "$t" = sg ]; then label="staleguard"; else label="aws s3 sync"; fi
      echo "| $r | $label (${ORDER[$r]}) | ${WALL[${t}_r$r]} | $(req_cells "${t}_r$r") | ${UPL[${t}_r$r]} |"
    done
  done
  echo
  for r in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2016 # the backquotes are Markdown
    echo "- round $r: changed $(tr ' ' '\n' <<<"${CHANGED[$r]}" | sed 's/.*/`&`/' | paste -sd, - | sed 's/,/, /g'); the rebuild wrote ${WROTE[$r]} output files (removed ${REMOVED[$r]}, build ${WALL[build_r$r]} s)"
    echo "  - staleguard: ${NOTE[sg_r$r]}"
    echo "  - aws s3 sync: ${NOTE[aws_r$r]}"
  done
  echo
  echo "staleguard's deploy records (\`.staleguard/deploys/*.json.gz\`, one per deploy, every object with its hash and headers): $RECORD_SIZES MB."
  echo
  echo "Objects at the end: staleguard's bucket $END_OBJ_SG, aws's bucket $END_OBJ_AWS; the output folder has $END_OUT_FILES files."
  echo "staleguard also stores, for rollback, one bundle per deploy with the new mutable contents under"
  echo "\`.staleguard/bundles/\` (contents with a fingerprinted twin are not copied), and its deploy records; neither"
  echo "tool deletes the previous rounds' fingerprinted files here"
  echo "(staleguard's GC keeps them for 3 deploys and 1 day; \`aws s3 sync\` runs without \`--delete\`)."
  echo
  any=0
  for k in "${!REQ[@]}"; do
    case $k in */non2xx | */other) [ "${REQ[$k]}" -eq 0 ] || any=1 ;; esac
  done
  if [ "$any" = 1 ]; then
    echo "Non-2xx answers (a 404 for state that does not exist yet is expected on the first deploy) / other methods:"
    for n in sg_first aws_first $(for r in $(seq 1 "$ROUNDS"); do echo "sg_r$r aws_r$r"; done); do
      echo "- $n: ${REQ[$n/non2xx]} non-2xx, ${REQ[$n/other]} other"
    done
    echo
  fi
  if [ "${#WARNINGS[@]}" -gt 0 ]; then
    echo "Warnings:"
    for m in "${WARNINGS[@]}"; do echo "- $m"; done
    echo
  fi
  echo "Raw data: \`bench/work/deploy/runs/\` (each tool's output, the moto log lines of each run), moto's log \`bench/work/deploy/moto/moto.log\`."
} >"$REPORT"
echo >&2
cat "$REPORT"
info "report written to $REPORT"
