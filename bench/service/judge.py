"""Which scopes are stale at the end: a scope is stale when the recorder received no purge covering
its last acknowledged save after that save was acknowledged (a PURGE of the path, or a BAN whose
`^prefix` or `^exact$` regex covers it). Prints `stale=N scopes=M purges=P`.
Usage: judge.py ACKS_FILE RECORDER_LOG"""
import sys

last = {}
for line in open(sys.argv[1]):
    t, scope, path = line.split()
    last[scope] = (float(t), path)
purges = []
for line in open(sys.argv[2]):
    t, method, path, ban = line.split()
    purges.append((float(t), method, path, ban))


def covers(method, path, ban, want):
    if method == "PURGE":
        return path == want
    if method == "BAN" and ban != "-":
        re = ban[1:] if ban.startswith("^") else ban
        exact = re.endswith("$")
        lit = (re[:-1] if exact else re).replace("\\", "")
        return lit == want if exact else want.startswith(lit)
    return False


stale = [s for s, (t, p) in last.items() if not any(pt >= t and covers(m, pp, b, p) for pt, m, pp, b in purges)]
print(f"stale={len(stale)} scopes={len(last)} purges={len(purges)}")
