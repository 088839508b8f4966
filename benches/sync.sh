#!/usr/bin/env bash
# benches/sync.sh — fleet-scale sync benchmark of the approval service jitsudod: 10,000
# enrolled hosts, 10,000 outstanding revocations (one revoked grant on each host), host
# syncs per second and p50/p99 latency on loopback against SQLite and PostgreSQL, each
# host's answer carrying its own signed revocation list (server/examples/syncgen.rs);
# then a shorter run of syncs as older hosts send them (the fleet's list, signed once and
# reused). Results: benches/SERVICE-RESULTS.md ("Fleet-scale sync", written by hand from
# this script's output), raw data: benches/results/sync.json.
#
# Run as root from anywhere:
#     benches/sync.sh                              # build jitsudod (target/bench), then measure
#     benches/sync.sh --hosts 10000 --revocations 10000 --syncs 20000 --clients 8
#
# Nothing on the host changes except the release build in target/bench/ and
# benches/results/sync.json: everything runs in a private mount and PID namespace, with
# a temporary PostgreSQL server (initdb + pg_ctl as postgres, Unix socket only) and
# jitsudod on 127.0.0.1, as benches/service.sh does.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$REPO/target/bench}
PY=/usr/bin/python3

if [[ ${1:-} != --inner ]]; then
    HOSTS=10000
    REVOCATIONS=10000
    SYNCS=20000
    FLEET_SYNCS=2000
    CLIENTS=8
    BUILD=1
    BIN_DIR=
fi

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<EOF2
options:
  --hosts N          enrolled hosts (default $HOSTS)
  --revocations N    outstanding revocations, at most --hosts (default $REVOCATIONS)
  --syncs N          measured syncs with each host's own list (default $SYNCS)
  --fleet-syncs N    measured syncs of older hosts, the fleet's list (default $FLEET_SYNCS)
  --clients N        concurrent clients (default $CLIENTS)
  --no-build         use the last build in target/bench
  --bin-dir DIR      use jitsudod and examples/syncgen from DIR
EOF2
}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'sync.sh: error: %s\n' "$*" >&2; exit 1; }

start_service() {
    local name=$1 database=$2 dir="$T/$1"
    mkdir -p "$dir"
    cat >"$dir/jitsudod.toml" <<EOF2
listen = "127.0.0.1:0"
database = "$database"
policy = "$T/policy.toml"
active_key = "bench"

[[signing_key]]
file = "$T/keys/bench.key"

[limits]
host_requests_per_minute = 10000000
user_requests_per_minute = 10000000
EOF2
    TOKEN=$("$BIN/jitsudod" add-admin admin --config "$dir/jitsudod.toml" 2>/dev/null)
    NO_COLOR=1 RUST_LOG=warn "$BIN/jitsudod" serve --config "$dir/jitsudod.toml" \
        >"$dir/stdout" 2>"$dir/service.log" &
    SERVICE_PID=$!
    local _
    for _ in $(seq 200); do
        grep -q '^listening on ' "$dir/stdout" 2>/dev/null && break
        kill -0 "$SERVICE_PID" 2>/dev/null || die "jitsudod ($name) did not start: $(cat "$dir/service.log")"
        sleep 0.05
    done
    URL=$(sed -n 's/^listening on //p' "$dir/stdout")
    [[ -n $URL ]] || die "jitsudod ($name) did not report its address"
}

stop_service() {
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
}

load() {
    local name=$1 database=$2
    start_service "$name" "$database"
    log "$name: $HOSTS hosts, $REVOCATIONS revocations, $SYNCS syncs from $CLIENTS clients ($URL)"
    "$SYNCGEN" --url "$URL" --admin-token "$TOKEN" --hosts "$HOSTS" \
        --revocations "$REVOCATIONS" --syncs "$SYNCS" --fleet-syncs "$FLEET_SYNCS" \
        --clients "$CLIENTS" --label "$name" | tee -a "$T/sync.jsonl"
    stop_service
}

start_postgres() {
    local pgbin
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [[ -x $pgbin/initdb ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
    install -d -o postgres -g postgres -m 0755 "$T/pg"
    runuser -u postgres -- "$pgbin/initdb" -D "$T/pg/data" -A trust -U postgres -E UTF8 \
        >"$T/pg/initdb.log" 2>&1 || die "initdb failed: $(cat "$T/pg/initdb.log")"
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w -t 60 \
        -o "-k $T/pg -c listen_addresses=''" start >/dev/null || die "pg_ctl start failed"
    runuser -u postgres -- "$pgbin/createdb" -h "$T/pg" -U postgres bench
    PG_URL="postgres://postgres@localhost/bench?host=$T/pg"
}

inner() {
    [[ -n ${T:-} && -d $T ]] || die "inner: T not set"
    mount -t proc proc /proc
    "$CTL" keygen --id bench --out "$T/keys" >/dev/null 2>&1 || die "cannot make a signing key"
    cat >"$T/policy.toml" <<'EOF2'
[[rule]]
name = "bench-auto"
commands = ["/usr/bin/id"]
decision = "auto"
max_duration = "1h"
EOF2
    cat /proc/loadavg >"$T/loadavg-before"
    load sqlite "sqlite://$T/sqlite/jitsudod.db"
    start_postgres
    load postgres "$PG_URL"
    cat /proc/loadavg >"$T/loadavg-after"
}

if [[ ${1:-} == --inner ]]; then
    inner
    exit 0
fi

while (($#)); do
    case $1 in
    --hosts) HOSTS=$2; shift 2 ;;
    --revocations) REVOCATIONS=$2; shift 2 ;;
    --syncs) SYNCS=$2; shift 2 ;;
    --fleet-syncs) FLEET_SYNCS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || die "run as root (namespaces, runuser postgres)"

if ((BUILD)); then
    log "release build (target dir: $BENCH_TARGET_DIR)"
    (cd "$REPO" && CARGO_TARGET_DIR=$BENCH_TARGET_DIR cargo build --release -p jitsudod --bins --examples)
fi
BIN=${BIN_DIR:-$BENCH_TARGET_DIR/release}
SYNCGEN=$BIN/examples/syncgen
# Only for the signing key: any build of jitsudoctl will do.
if [[ -z ${CTL:-} ]]; then
    for CTL in "$BIN/jitsudoctl" "$REPO/target/release/jitsudoctl" "$REPO/target/debug/jitsudoctl"; do
        [[ -x $CTL ]] && break
    done
fi
for f in "$BIN/jitsudod" "$SYNCGEN" "$CTL"; do
    [[ -x $f ]] || die "$f is missing (build first, or see --bin-dir)"
done

T=$(mktemp -d /tmp/jitsudo-syncbench.XXXXXX)
chmod 0755 "$T"
trap 'rm -rf "$T"' EXIT
export T BIN SYNCGEN CTL HOSTS REVOCATIONS SYNCS FLEET_SYNCS CLIENTS
unshare --mount --propagation private --pid --fork -- "$BASH" "${BASH_SOURCE[0]}" --inner

mkdir -p "$HERE/results"
"$PY" - "$T" "$HERE/results/sync.json" <<'EOF2'
import json, os, platform, sys, time
t, out = sys.argv[1], sys.argv[2]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
res = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
                "loadavg_before": open(f"{t}/loadavg-before").read().split()[:3],
                "loadavg_after": open(f"{t}/loadavg-after").read().split()[:3]},
    "runs": [json.loads(l) for l in open(f"{t}/sync.jsonl")],
}
json.dump(res, open(out, "w"), indent=2)
print()
print("| back end | list | hosts | revocations | syncs | syncs/s | p50 ms | p99 ms | max ms | bytes/answer | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in res["runs"]:
    print(f"| {r['label']} | {r['list']} | {r['hosts']} | {r['revocations']} | {r['syncs']} | "
          f"{r['syncs_per_second']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | "
          f"{r['mean_response_bytes']:.0f} | {r['errors']} |")
    q = r.get("quiet_host_response_bytes")
    if q:
        print(f"|  | quiet host: {q['before_revocations']} bytes before the fleet's revocations, {q['after_revocations']} after |")
print(f"load average before {res['machine']['loadavg_before']}, after {res['machine']['loadavg_after']}")
EOF2
