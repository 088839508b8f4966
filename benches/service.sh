#!/usr/bin/env bash
# benches/service.sh — load benchmark of the approval service jitsudod: automatic
# decisions per second and p50/p99 latency on loopback, against SQLite and PostgreSQL,
# for a fixed number of host-signed requests from N concurrent host clients
# (server/examples/loadgen.rs); then the end-to-end latency of
# `jitsudo --request --reason x --run -- /bin/true` (the real setuid binary, run as a
# user, against the running service, auto-approved rule). Results: benches/SERVICE-RESULTS.md
# (written by hand from this script's output), raw data: benches/results/service.json.
#
# Run as root from anywhere:
#     benches/service.sh                          # build (target/bench), then measure
#     benches/service.sh --clients 8 --requests 20000 --e2e-runs 200
#
# Nothing on the host changes except the release build in target/bench/ and
# benches/results/service.json. Everything runs in a private mount and PID namespace
# (`unshare --mount --propagation private --pid --fork`): overlays over /etc and
# /var/lib, a bench user added there, a temporary PostgreSQL server (initdb + pg_ctl as
# postgres, Unix socket only, default durability settings), jitsudod on 127.0.0.1, a
# syslog sink socket. When the script ends, the namespace's init exits and the kernel
# kills every process left in it; the temporary directory is removed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$REPO/target/bench}
PY=/usr/bin/python3

if [[ ${1:-} != --inner ]]; then
    CLIENTS=8
    REQUESTS=20000
    E2E_RUNS=200
    BUILD=1
    BIN_DIR=
fi

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<EOF
options:
  --clients N      concurrent host clients (default $CLIENTS)
  --requests N     measured requests per back end (default $REQUESTS)
  --e2e-runs N     timed jitsudo --request --run invocations (default $E2E_RUNS)
  --no-build       use the last build in target/bench
  --bin-dir DIR    use jitsudod, jitsudoctl, jitsudo and examples/loadgen from DIR
EOF
}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'service.sh: error: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------------------
# Inner part: PID 1 of a private PID and mount namespace.
# --------------------------------------------------------------------------------------

# start_service NAME DATABASE: jitsudod on 127.0.0.1:<free port>; sets URL and TOKEN.
start_service() {
    local name=$1 database=$2 dir="$T/$1"
    mkdir -p "$dir"
    cat >"$dir/jitsudod.toml" <<EOF
listen = "127.0.0.1:0"
database = "$database"
policy = "$T/policy.toml"
active_key = "bench"

[[signing_key]]
file = "$T/keys/bench.key"

[limits]
host_requests_per_minute = 10000000
user_requests_per_minute = 10000000
EOF
    TOKEN=$("$BIN/jitsudod" add-admin admin --config "$dir/jitsudod.toml" 2>/dev/null)
    NO_COLOR=1 "$BIN/jitsudod" serve --config "$dir/jitsudod.toml" \
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
    log "$name: $REQUESTS requests from $CLIENTS host clients ($URL)"
    "$LOADGEN" --url "$URL" --admin-token "$TOKEN" --clients "$CLIENTS" \
        --requests "$REQUESTS" --label "$name" | tee -a "$T/load.jsonl"
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
    PG_VERSION=$("$pgbin/postgres" --version)
}

inner() {
    [[ -n ${T:-} && -d $T ]] || die "inner: T not set"
    mount -t proc proc /proc
    local d name
    for d in /etc /var/lib; do
        name=$(echo "${d#/}" | tr / _)
        mkdir -p "$T/ovl/$name/u" "$T/ovl/$name/w"
        chown --reference="$d" "$T/ovl/$name/u"
        chmod --reference="$d" "$T/ovl/$name/u"
        mount -t overlay overlay -o "lowerdir=$d,upperdir=$T/ovl/$name/u,workdir=$T/ovl/$name/w" "$d"
    done

    "$BIN/jitsudoctl" keygen --id bench --out "$T/keys" >"$T/trusted_key.toml" 2>/dev/null
    cat >"$T/policy.toml" <<'EOF'
[[rule]]
name = "bench-auto"
commands = ["/bin/true", "/usr/bin/id *"]
decision = "auto"
max_duration = "1h"
EOF

    cat /proc/loadavg >"$T/loadavg-before"

    # ---- load: SQLite, then PostgreSQL ---------------------------------------------
    load sqlite "sqlite://$T/sqlite/jitsudod.db"
    start_postgres
    load postgres "$PG_URL"

    # ---- end to end: jitsudo --request --run as a user, against the SQLite service ----
    log "end to end: $E2E_RUNS x jitsudo --request --reason x --run -- /bin/true"
    start_service e2e "sqlite://$T/e2e/jitsudod.db"
    useradd -M -l -U -d /nonexistent -s /usr/sbin/nologin jtbench
    install -d -m 0755 "$T/bin"
    install -o root -g root -m 4755 "$JITSUDO" "$T/bin/jitsudo"
    "$PY" "$HERE/syslog_sink.py" "$T/log.sock" "$T/syslog.log" "$T/sink.ready" &
    local _
    for _ in $(seq 100); do [[ -s $T/sink.ready ]] && break; sleep 0.05; done
    [[ -S $T/log.sock ]] || die "syslog sink did not start"
    rm -rf /etc/jitsudo /var/lib/jitsudo
    install -d -o root -g root -m 0755 /etc/jitsudo
    install -d -o root -g root -m 0700 /var/lib/jitsudo
    {
        printf 'host = "bench-host"\nservice = "%s"\n\n[log]\nsyslog_socket = "%s"\n\n' "$URL" "$T/log.sock"
        cat "$T/trusted_key.toml"
    } >/etc/jitsudo/jitsudo.toml
    chmod 0644 /etc/jitsudo/jitsudo.toml
    local public_key
    public_key=$("$T/bin/jitsudo" --enroll | sed -n 's/^public key: //p')
    JITSUDO_SERVICE=$URL JITSUDO_TOKEN=$TOKEN "$BIN/jitsudoctl" host add bench-host "$public_key" >/dev/null
    "$PY" - "$T/bin/jitsudo" jtbench "$E2E_RUNS" "$T/e2e.json" <<'EOF'
import json, math, pwd, subprocess, sys, time
jt, user, runs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pw = pwd.getpwnam(user)
env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
def run(argv, check=True):
    t = time.perf_counter()
    r = subprocess.run(argv, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], env=env,
                       cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if check and r.returncode != 0:
        sys.exit(f"{argv} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return dt
request = [jt, "--request", "--reason", "x", "--run", "--", "/bin/true"]
floor, e2e = [], []
for i in range(runs + 10):
    # Each run starts with an empty cache (a fresh request, not a cached grant).
    run([jt, "--drop"], check=False)
    f = run(["/bin/true"])
    t = run(request)
    if i >= 10:
        floor.append(f)
        e2e.append(t)
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(len(xs) * p) - 1))] * 1000
res = {"runs": runs,
       "request_run_ms": {"p50": pct(e2e, .5), "p90": pct(e2e, .9), "p99": pct(e2e, .99), "max": max(e2e) * 1000},
       "exec_floor_ms": {"p50": pct(floor, .5), "p99": pct(floor, .99)}}
json.dump(res, open(out, "w"))
print(json.dumps(res))
EOF
    stop_service
    cat /proc/loadavg >"$T/loadavg-after"
}

if [[ ${1:-} == --inner ]]; then
    inner
    exit 0
fi

# --------------------------------------------------------------------------------------
# Outer part.
# --------------------------------------------------------------------------------------
while (($#)); do
    case $1 in
    --clients) CLIENTS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --e2e-runs) E2E_RUNS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --bin-dir) BIN_DIR=$2; BUILD=0; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || die "run as root (setuid binary, namespaces, runuser postgres)"

if ((BUILD)); then
    log "release build (target dir: $BENCH_TARGET_DIR)"
    (
        cd "$REPO"
        export CARGO_TARGET_DIR=$BENCH_TARGET_DIR
        cargo build --release -p jitsudod --bins --examples
        cargo build --release -p jitsudo --bins
        # As shipped (packaging/build-release.sh): jitsudo as a static musl PIE.
        rustup target list --installed | grep -qx x86_64-unknown-linux-musl ||
            rustup target add x86_64-unknown-linux-musl
        CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release -p jitsudo --bin jitsudo \
            --target x86_64-unknown-linux-musl
        install -m 0755 "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/jitsudo" \
            "$CARGO_TARGET_DIR/release/jitsudo"
    )
fi
BIN=${BIN_DIR:-$BENCH_TARGET_DIR/release}
LOADGEN=$BIN/examples/loadgen
JITSUDO=$BIN/jitsudo
for f in "$BIN/jitsudod" "$BIN/jitsudoctl" "$JITSUDO" "$LOADGEN"; do
    [[ -x $f ]] || die "$f is missing (build first, or see --bin-dir)"
done

T=$(mktemp -d /tmp/jitsudo-svcbench.XXXXXX)
chmod 0755 "$T"
trap 'rm -rf "$T"' EXIT
export T BIN LOADGEN JITSUDO CLIENTS REQUESTS E2E_RUNS
unshare --mount --propagation private --pid --fork -- "$BASH" "${BASH_SOURCE[0]}" --inner

mkdir -p "$HERE/results"
"$PY" - "$T" "$HERE/results/service.json" "$CLIENTS" <<'EOF'
import json, os, platform, subprocess, sys, time
t, out, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
res = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpu": cpu, "cpus": os.cpu_count(), "memory_gib": round(int(mem) / 2**20, 1),
                "kernel": platform.release(),
                "loadavg_before": open(f"{t}/loadavg-before").read().split()[:3],
                "loadavg_after": open(f"{t}/loadavg-after").read().split()[:3]},
    "load": [json.loads(l) for l in open(f"{t}/load.jsonl")],
    "end_to_end": json.load(open(f"{t}/e2e.json")),
}
json.dump(res, open(out, "w"), indent=2)
print()
print(f"| back end | clients | requests | decisions/s | p50 ms | p99 ms | max ms | errors |")
print(f"|---|---:|---:|---:|---:|---:|---:|---:|")
for r in res["load"]:
    print(f"| {r['label']} | {r['clients']} | {r['requests']} | {r['decisions_per_second']:.0f} | "
          f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['errors']} |")
e = res["end_to_end"]
print(f"\njitsudo --request --run /bin/true: p50 {e['request_run_ms']['p50']:.1f} ms, "
      f"p99 {e['request_run_ms']['p99']:.1f} ms (exec floor p50 {e['exec_floor_ms']['p50']:.1f} ms), "
      f"{e['runs']} runs")
print(f"load average before {res['machine']['loadavg_before']}, after {res['machine']['loadavg_after']}")
EOF
