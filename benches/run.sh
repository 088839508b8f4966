#!/usr/bin/env bash
# benches/run.sh — latency benchmark: `jitsudo /bin/true` against the exec floor,
# sudo, doas and sudo-rs, all run by an unprivileged user. Results: benches/RESULTS.md,
# raw data: benches/results/.
#
# Run as root from anywhere (paths are relative to this file):
#     benches/run.sh                     # full run (builds jitsudo + sudo-rs if needed)
#     benches/run.sh --only-baselines    # floor, sudo, doas, sudo-rs only (no jitsudo)
#     benches/run.sh --runs 2000 --warmup 100 --other-grants 10000
#
# Nothing on the host changes except: apt packages installed if missing (hyperfine,
# sudo, opendoas, python3, file, build deps for sudo-rs), a cached, *non-setuid* sudo-rs
# build in /opt/sudo-rs, the release build in target/release (made the way it ships:
# packaging/build-release.sh -p jitsudo, i.e. jitsudo as a static musl PIE), and benches/.
# The cold-cache scenario drops the host's page cache before each of its runs (harmless,
# but other work on the machine reads from disk again for a moment).
# Everything else happens inside a private mount namespace (`unshare --mount
# --propagation private`) in which /etc, /var, /run, /opt and /dev are overlay
# mounts backed by a temporary directory:
#   - bench user `jtbench` (useradd inside the overlay),
#   - sudoers rule, /etc/doas.conf, /etc/jitsudo/jitsudo.toml, /var/lib/jitsudo,
#   - setuid-root copies /opt/jt/jitsudo and /opt/sudo-rs/bin/sudo-rs, and
#     /opt/jt/bench-prep (benches/bench-prep.c: the untimed root steps between runs),
#   - /dev/log: a Unix datagram socket served by benches/syslog_sink.py, so that
#     every tool really sends its syslog records (none is excused from logging).
# The namespace, its mounts and the temporary directory disappear when the script ends.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RESULTS_DIR="$HERE/results"

BENCH_USER=${BENCH_USER:-jtbench}
BENCH_HOST=bench-host
SUDO_RS_ROOT=${SUDO_RS_ROOT:-/opt/sudo-rs}
# Pinned for comparable results over time; builds with Rust 1.95 (checked 2026-11).
SUDO_RS_VERSION=${SUDO_RS_VERSION:-0.2.15}
OTHER_UID_BASE=200000

if [[ ${1:-} != --inner ]]; then # the inner part gets these from the environment
    RUNS=1000
    WARMUP=50
    OTHER_GRANTS=10000
    COLD_RUNS=100
    RECORD_RUNS=10
    RECORD_MIB=200
    ONLY_BASELINES=0
    BUILD=1
    WAIT_QUIET=0
    EXEC_CMD=
    JITSUDO_BIN=
    JITSUDOCTL_BIN=
    SCHED=fifo
    JT_BUILD_DESC="prebuilt (--no-build or --jitsudo)"
    MAX_INTERFERENCE=5
    MAX_ATTEMPTS=3
fi

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    cat <<EOF
options:
  --only-baselines     skip jitsudo (no build, no jitsudo rows)
  --no-build           do not build (use target/release/jitsudo and jitsudoctl as they are)
  --jitsudo PATH       benchmark this jitsudo binary instead of building one (e.g. an experiment
                       like target/release/jitsudo); jitsudoctl still comes from the build
  --jitsudoctl PATH    use this jitsudoctl (keygen, mint) instead of building one
  --runs N             timed runs per command (default $RUNS)
  --warmup N           warmup runs per command (default $WARMUP)
  --other-grants N     cached grants of other users in the second scenario (default $OTHER_GRANTS)
  --cold-runs N        timed runs per command with cold caches (default $COLD_RUNS; each drops
                       the host's page cache first)
  --record-runs N      timed runs of the recording scenario (default $RECORD_RUNS; each moves
                       $RECORD_MIB MiB)
  --exec 'CMD'         debugging: set everything up, then run CMD (bash, as root) inside the
                       namespace instead of timing; \$JT is the setuid jitsudo, as_user runs
                       a command as the bench user (e.g. --exec 'as_user \$JT -l')
  --sched fifo|nice|normal
                       scheduling of hyperfine (so of every timed command) and the syslog sink:
                       fifo = SCHED_FIFO priority 10 (default; stable numbers even on a busy
                       machine), nice = nice -10, normal = as started
  --max-interference PCT  repeat a hyperfine run in which other processes used more than PCT %
                       of the CPUs (default $MAX_INTERFERENCE), at most --max-attempts times (default $MAX_ATTEMPTS)
  --wait-quiet SECS    first wait up to SECS seconds for the CPUs to be idle (<10% busy over 3 s)
EOF
}

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

PY=/usr/bin/python3

# --------------------------------------------------------------------------------------
# Inner part: runs inside the private mount namespace (re-executed by the outer part).
# --------------------------------------------------------------------------------------

# overlay_dir DIR: make DIR a copy-on-write view of itself for this namespace only.
# Mounts below DIR (e.g. /dev/pts, /dev/shm) are bound back on top, so they stay usable.
overlay_dir() {
    local dir=$1 name
    name=$(echo "${dir#/}" | tr / _)
    local base="$T/ovl/$name"
    mkdir -p "$base/u" "$base/w" "$base/orig"
    # The overlay's root directory takes owner and mode from the upper directory.
    chown --reference="$dir" "$base/u"
    chmod --reference="$dir" "$base/u"
    mount --rbind "$dir" "$base/orig"
    local subs
    subs=$(findmnt -rn -o TARGET | awk -v p="$dir/" 'index($0, p) == 1' | sort -u)
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$base/u,workdir=$base/w" "$dir"
    local m parent skip
    for m in $subs; do
        # only direct sub-mounts; nested ones come along with --rbind
        skip=0
        for parent in $subs; do
            if [[ $m != "$parent" && $m == "$parent"/* ]]; then skip=1; fi
        done
        if ((skip == 0)) && [[ -e $m ]]; then
            mount --rbind "$base/orig${m#"$dir"}" "$m"
        fi
    done
}

# sched_exec CMD...: exec CMD with the scheduling chosen by --sched (inherited by children,
# kept across setpriv and setuid exec, so it applies equally to every tool timed).
# It replaces the calling (sub)shell, so a background (sched_exec ...) & has CMD's PID.
sched_exec() {
    case ${SCHED:-normal} in
    fifo) exec chrt -f 10 "$@" ;;
    nice) exec nice -n -10 "$@" ;;
    *) exec "$@" ;;
    esac
}

as_user() (
    sched_exec setpriv --reuid "$BENCH_USER" --regid "$BENCH_USER" --init-groups -- \
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ USER="$BENCH_USER" \
        LOGNAME="$BENCH_USER" LANG=C.UTF-8 "$@"
)

inner() {
    [[ -n ${T:-} && -d $T ]] || die "inner: T not set"
    local out="$T/out"

    export -f as_user sched_exec
    log "private mount namespace: overlays on /etc /var /run /opt /dev"
    local d
    for d in /etc /var /run /opt /dev; do overlay_dir "$d"; done

    # ---- syslog sink at /dev/log --------------------------------------------------
    SINK_PID=
    stop_sink() {
        if [[ -n ${SINK_PID:-} ]]; then
            kill -TERM "$SINK_PID" 2>/dev/null || true
            wait "$SINK_PID" 2>/dev/null || true
            SINK_PID=
        fi
    }
    trap stop_sink EXIT
    if [[ -S /dev/log ]]; then
        echo socket >"$out/host-dev-log.txt"
        log "note: /dev/log exists on the host; replaced by the sink inside the namespace"
    else
        echo none >"$out/host-dev-log.txt"
    fi
    rm -f /dev/log
    : >"$out/syslog.log"
    (sched_exec "$PY" "$HERE/syslog_sink.py" /dev/log "$out/syslog.log" "$T/sink.ready") &
    SINK_PID=$!
    local _
    for _ in $(seq 100); do [[ -s $T/sink.ready ]] && break; sleep 0.05; done
    [[ -S /dev/log ]] || die "syslog sink did not start"

    # ---- bench user ---------------------------------------------------------------
    if ! id "$BENCH_USER" >/dev/null 2>&1; then
        useradd -M -l -U -d /nonexistent -s /usr/sbin/nologin "$BENCH_USER"
    fi
    local bench_uid
    bench_uid=$(id -u "$BENCH_USER")
    chown "$BENCH_USER:$BENCH_USER" "$out"

    # ---- sudo / sudo-rs (both read /etc/sudoers, which includes /etc/sudoers.d) -----
    grep -Eq '^[@#]includedir /etc/sudoers.d' /etc/sudoers ||
        echo '@includedir /etc/sudoers.d' >>/etc/sudoers
    install -d -m 0755 /etc/sudoers.d
    cat >/etc/sudoers.d/jitsudo-bench <<EOF
Defaults:$BENCH_USER !lecture
$BENCH_USER ALL=(root) NOPASSWD: /bin/true
EOF
    chmod 0440 /etc/sudoers.d/jitsudo-bench
    visudo -cq || die "visudo -c failed"
    rm -f /etc/sudoers-rs # sudo-rs would prefer it over /etc/sudoers

    install -d -m 0755 /opt/sudo-rs/bin
    install -o root -g root -m 4755 "$SUDO_RS_ROOT/bin/sudo" /opt/sudo-rs/bin/sudo-rs

    # ---- doas ---------------------------------------------------------------------
    echo "permit nopass $BENCH_USER as root cmd /bin/true" >/etc/doas.conf
    chown root:root /etc/doas.conf
    chmod 0600 /etc/doas.conf

    # ---- jitsudo ------------------------------------------------------------------
    local JT=/opt/jt/jitsudo
    if ((!ONLY_BASELINES)); then
        local ctl="$JITSUDOCTL_BIN"
        install -d -m 0755 /opt/jt
        install -o root -g root -m 4755 "$JITSUDO_BIN" "$JT"
        install -d -m 0700 "$T/keys"
        "$ctl" keygen --id bench-key --out "$T/keys" >"$T/trusted_key.toml"
        install -d -o root -g root -m 0755 /etc/jitsudo
        {
            printf 'host = "%s"\n\n[log]\nsyslog_socket = "/dev/log"\nrequire = true\n\n' "$BENCH_HOST"
            cat "$T/trusted_key.toml"
        } >/etc/jitsudo/jitsudo.toml
        chown root:root /etc/jitsudo/jitsudo.toml
        chmod 0644 /etc/jitsudo/jitsudo.toml
        rm -rf /var/lib/jitsudo
        install -d -o root -g root -m 0700 /var/lib/jitsudo
        "$ctl" mint --key "$T/keys/bench-key.key" --user "$BENCH_USER" --host "$BENCH_HOST" \
            --command /bin/true --for 1h >"$T/token"
        (cd / && as_user "$JT" --import -) <"$T/token" || die "jitsudo --import failed (see above)"
        # Config variants for the journal scenario (bench-prep config NAME installs one).
        install -d -m 0755 /opt/jt/configs
        cp /etc/jitsudo/jitsudo.toml /opt/jt/configs/default.toml
        { cat /etc/jitsudo/jitsudo.toml; printf '\n[journal]\nenabled = false\n'; } >/opt/jt/configs/no-journal.toml
        { cat /etc/jitsudo/jitsudo.toml; printf '\n[journal]\ndurable = true\n'; } >/opt/jt/configs/durable-journal.toml
        { cat /etc/jitsudo/jitsudo.toml; printf '\n[record]\nalways = true\n'; } >/opt/jt/configs/record.toml
        # The recording scenario: a grant for `cat` of a 200 MiB file (random bytes, so
        # nothing along the way can shortcut it), recorded or not by the config.
        head -c $((RECORD_MIB * 1024 * 1024)) /dev/urandom >/opt/jt/big
        chmod 0644 /opt/jt/big
        "$ctl" mint --key "$T/keys/bench-key.key" --user "$BENCH_USER" --host "$BENCH_HOST" \
            --command "/usr/bin/cat /opt/jt/big" --for 1h >"$T/token-cat"
        (cd / && as_user "$JT" --import -) <"$T/token-cat" || die "jitsudo --import (cat) failed"
    fi
    # Root steps between timed runs (drop caches, switch config), run by hyperfine as the user.
    install -d -m 0755 /opt/jt
    install -o root -g root -m 4755 "$T/bench-prep" /opt/jt/bench-prep

    # ---- machine description --------------------------------------------------------
    local jt_arg=(--jitsudo "$JT" --jitsudo-source "${JITSUDO_BIN#"$REPO"/}")
    ((!ONLY_BASELINES)) || jt_arg=()
    "$PY" "$HERE/report.py" machine "$out/machine.json" \
        --repo "$REPO" --sudo-rs /opt/sudo-rs/bin/sudo-rs "${jt_arg[@]}"

    # ---- commands ------------------------------------------------------------------
    local -a cmds=(
        "/bin/true"
        "/usr/bin/env /bin/true"
    )
    ((ONLY_BASELINES)) || cmds+=("$JT /bin/true")
    cmds+=(
        "/usr/bin/doas /bin/true"
        "/opt/sudo-rs/bin/sudo-rs -n /bin/true"
        "/usr/bin/sudo -n /bin/true"
    )

    log "checking that every command succeeds as $BENCH_USER (uid $bench_uid)"
    local c rc
    : >"$out/precheck.txt"
    for c in "${cmds[@]}"; do
        rc=0
        # shellcheck disable=SC2086 # split like hyperfine -N does
        (cd / && as_user $c) >"$T/pc.out" 2>"$T/pc.err" || rc=$?
        {
            echo "\$ $c    # exit $rc"
            sed 's/^/  stdout: /' "$T/pc.out"
            sed 's/^/  stderr: /' "$T/pc.err"
        } >>"$out/precheck.txt"
        if ((rc != 0)); then
            cat "$out/precheck.txt" >&2
            die "'$c' fails as $BENCH_USER (exit $rc); fix the setup before timing"
        fi
    done
    cat "$out/precheck.txt" >&2

    if [[ -n ${EXEC_CMD:-} ]]; then
        log "--exec: $EXEC_CMD"
        export JT BENCH_USER
        export -f as_user sched_exec
        (cd / && bash -c "$EXEC_CMD") || echo "exit $?" >&2
        stop_sink
        trap - EXIT
        return
    fi

    # Markers in the syslog let report.py count records per invocation of each command.
    local mark=(--cleanup "/usr/bin/logger -u /dev/log -t bench-mark command-done")
    local hf=(hyperfine -N --style basic "${mark[@]}")

    # run_scenario NAME RUNS WARMUP [HYPERFINE ARGS] CMD...: one hyperfine run of CMDs ->
    # $out/NAME.json. report.py timed
    # measures the CPU time other processes used meanwhile; above MAX_INTERFERENCE % of the
    # machine the run is repeated (after waiting for quiet), up to MAX_ATTEMPTS times.
    run_scenario() {
        local name=$1 runs=$2 warmup=$3 attempt=1 foreign
        shift 3
        while :; do
            (cd / && as_user /usr/bin/logger -u /dev/log -t bench-mark "$name-begin")
            (cd / && "$PY" "$HERE/report.py" timed --out "$out/$name-interference.json" \
                --sink-pid "$SINK_PID" --attempt "$attempt" -- \
                bash -c 'as_user "$@"' as_user "${hf[@]}" --runs "$runs" --warmup "$warmup" \
                --export-json "$out/$name.json" "$@")
            foreign=$("$PY" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["foreign_pct"]))' \
                "$out/$name-interference.json")
            if ((foreign <= MAX_INTERFERENCE)); then
                log "$name: other processes used ${foreign}% of the CPUs during the run: ok"
                return
            fi
            if ((attempt >= MAX_ATTEMPTS)); then
                log "warning: $name: other processes used ${foreign}% of the CPUs; keeping attempt $attempt anyway"
                return
            fi
            log "$name: other processes used ${foreign}% of the CPUs (> ${MAX_INTERFERENCE}%): repeating"
            attempt=$((attempt + 1))
            wait_quiet
        done
    }

    cat /proc/loadavg >"$out/loadavg-before.txt"
    log "scenario 1: all commands, one hyperfine run ($RUNS runs + $WARMUP warmup each)"
    run_scenario main "$RUNS" "$WARMUP" "${cmds[@]}"

    log "scenario 3: cold caches ($COLD_RUNS runs each, page cache dropped before every run)"
    run_scenario cold "$COLD_RUNS" 0 --prepare "/opt/jt/bench-prep cold" "${cmds[@]}"

    if ((!ONLY_BASELINES)); then
        log "scenario 4: jitsudo with the journal off, on (the default) and durable"
        local variant jargs=()
        for variant in no-journal default durable-journal; do
            jargs+=(--prepare "/opt/jt/bench-prep config $variant" -n "jitsudo /bin/true, $variant" "$JT /bin/true")
        done
        run_scenario journal "$RUNS" "$WARMUP" "${jargs[@]}"
        /opt/jt/bench-prep config default
    fi

    if ((!ONLY_BASELINES)); then
        log "scenario 5: recorded vs unrecorded output, \`jitsudo cat\` of $RECORD_MIB MiB"
        # Output to hyperfine's pipe (read and discarded): a reader like a pager or a
        # shell pipeline. The recorded run keeps every old recording, so the page cache and
        # the disk see what a host sees; they are removed after the scenario.
        # The reference row: what writing the same bytes to the same disk costs without
        # jitsudo (`tee` into a directory next to the recordings).
        install -d -o "$BENCH_USER" -m 0700 /var/log/jitsudo-bench-tee
        local rargs=()
        for variant in default record; do
            rargs+=(--prepare "/opt/jt/bench-prep config $variant" -n "jitsudo cat, $variant" "$JT /usr/bin/cat /opt/jt/big")
        done
        rargs+=(--prepare "/opt/jt/bench-prep config default" -n "cat, tee" "/usr/bin/sh -c 'cat /opt/jt/big | tee /var/log/jitsudo-bench-tee/out'")
        run_scenario record "$RECORD_RUNS" 2 --output=pipe "${rargs[@]}"
        /opt/jt/bench-prep config default
        du -sh /var/log/jitsudo-io >"$out/record-du.txt" 2>&1 || true
        rm -rf /var/log/jitsudo-io /var/log/jitsudo-bench-tee
    fi

    if ((!ONLY_BASELINES)); then
        log "scenario 2: $OTHER_GRANTS other users' grants cached"
        local own="/var/lib/jitsudo/users/$bench_uid.json"
        [[ -f $own ]] || {
            find /var/lib/jitsudo -ls >&2
            die "expected the bench user's cache at $own (layout changed? adjust run.sh)"
        }
        "$PY" - "$own" "$OTHER_UID_BASE" "$OTHER_GRANTS" <<'EOF'
import os, shutil, sys
src, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
st = os.stat(src)
d = os.path.dirname(src)
for uid in range(base, base + n):
    dst = os.path.join(d, f"{uid}.json")
    shutil.copyfile(src, dst)
    os.chmod(dst, st.st_mode & 0o7777)
    os.chown(dst, st.st_uid, st.st_gid)
EOF
        echo "$(find /var/lib/jitsudo/users -type f | wc -l) files in /var/lib/jitsudo/users" >&2
        (cd / && as_user "$JT" /bin/true) || die "jitsudo fails with $OTHER_GRANTS other grants cached"
        run_scenario grants "$RUNS" "$WARMUP" "/usr/bin/env /bin/true" "$JT /bin/true"
    fi

    cat /proc/loadavg >"$out/loadavg-after.txt"
    stop_sink
    trap - EXIT
}

# --------------------------------------------------------------------------------------
# Outer part: runs on the host.
# --------------------------------------------------------------------------------------

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; }
    fi
}

ensure_sudo_rs() {
    local have=
    [[ -x $SUDO_RS_ROOT/bin/sudo ]] && have=$("$SUDO_RS_ROOT/bin/sudo" --version 2>/dev/null | head -1 || true)
    if [[ $have == "sudo-rs $SUDO_RS_VERSION" ]]; then
        return
    fi
    log "building sudo-rs $SUDO_RS_VERSION into $SUDO_RS_ROOT (one time; have: '${have:-none}')"
    ensure_packages libpam0g-dev gcc libc6-dev pkg-config
    command -v cargo >/dev/null || die "cargo not found (needed to build sudo-rs)"
    cargo install sudo-rs --version "=$SUDO_RS_VERSION" --locked --force --root "$SUDO_RS_ROOT"
    # Cached build stays non-setuid on the host; the setuid copy exists only in the namespace.
    chmod 0755 "$SUDO_RS_ROOT/bin/sudo"
}

# cpu_busy_pct: share of non-idle CPU time over the next 3 seconds, all CPUs.
cpu_busy_pct() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    sleep 3
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," ");
        busy=y[1]-x[1]; idle=y[2]-x[2]; printf "%d", (busy+idle) ? 100*busy/(busy+idle) : 0}'
}

wait_quiet() {
    local deadline=$((SECONDS + WAIT_QUIET)) busy
    while :; do
        busy=$(cpu_busy_pct)
        echo "$busy" >"$T/out/cpu-busy-before.txt"
        if ((busy < 10)); then
            log "CPUs ${busy}% busy: starting"
            return
        fi
        if ((SECONDS >= deadline)); then
            log "warning: CPUs ${busy}% busy before the benchmark (other load skews results)"
            return
        fi
        echo "CPUs ${busy}% busy; waiting for a quiet machine..." >&2
        sleep 10
    done
}

outer() {
    ((EUID == 0)) || die "run as root"
    ensure_packages hyperfine sudo opendoas python3 util-linux bsdutils file
    ensure_sudo_rs

    if ((!ONLY_BASELINES)); then
        if ((BUILD)); then
            if [[ -x $REPO/packaging/build-release.sh ]]; then
                # the shipped build, so the benchmark measures what users get
                JT_BUILD_DESC="packaging/build-release.sh -p jitsudo"
                log "$JT_BUILD_DESC"
                (cd "$REPO" && packaging/build-release.sh -p jitsudo)
            else
                JT_BUILD_DESC="cargo build --release -p jitsudo --bins"
                log "$JT_BUILD_DESC"
                (cd "$REPO" && cargo build --release -p jitsudo --bins)
            fi
        fi
        [[ -z $JITSUDO_BIN ]] || JT_BUILD_DESC="given with --jitsudo"
        : "${JITSUDO_BIN:=$REPO/target/release/jitsudo}"
        : "${JITSUDOCTL_BIN:=$REPO/target/release/jitsudoctl}"
        JITSUDO_BIN=$(realpath "$JITSUDO_BIN")
        JITSUDOCTL_BIN=$(realpath "$JITSUDOCTL_BIN")
        [[ -x $JITSUDO_BIN && -x $JITSUDOCTL_BIN ]] ||
            die "$JITSUDO_BIN and $JITSUDOCTL_BIN are needed (or use --only-baselines)"
        log "jitsudo under test: $JITSUDO_BIN ($({ ldd "$JITSUDO_BIN" 2>&1 || true; } | grep -q 'statically linked\|not a dynamic' && echo static || echo dynamic))"
    fi

    T=$(mktemp -d /tmp/jitsudo-bench.XXXXXX)
    chmod 0755 "$T"
    trap 'rm -rf "$T"' EXIT
    mkdir -p "$T/out"
    ensure_packages gcc libc6-dev
    gcc -O2 -Wall -Wextra -Werror -o "$T/bench-prep" "$HERE/bench-prep.c"

    [[ -n $EXEC_CMD ]] || wait_quiet
    export T RUNS WARMUP OTHER_GRANTS COLD_RUNS RECORD_RUNS RECORD_MIB ONLY_BASELINES BENCH_USER SUDO_RS_ROOT EXEC_CMD JITSUDO_BIN JITSUDOCTL_BIN SCHED \
        MAX_INTERFERENCE MAX_ATTEMPTS WAIT_QUIET JT_BUILD_DESC
    # The inner part stops its syslog sink on exit; pass on INT/TERM so it gets to.
    unshare --mount --propagation private -- "$BASH" ${BENCH_TRACE:+-x} "${BASH_SOURCE[0]}" --inner &
    INNER_PID=$!
    trap 'kill -TERM "$INNER_PID" 2>/dev/null || true; wait "$INNER_PID" || true; exit 143' INT TERM
    wait "$INNER_PID"
    trap - INT TERM
    [[ -z $EXEC_CMD ]] || return 0

    log "writing $RESULTS_DIR and $HERE/RESULTS.md"
    mkdir -p "$RESULTS_DIR"
    rm -f "$RESULTS_DIR"/{main,grants,cold,journal,record,machine}.json "$RESULTS_DIR"/{precheck.txt,host-dev-log.txt,syslog-counts.json,loadavg-*.txt,cpu-busy-before.txt,*-interference.json}
    cp "$T/out"/*.json "$T/out"/*.txt "$RESULTS_DIR/"
    "$PY" "$HERE/report.py" syslog "$T/out/syslog.log" "$RESULTS_DIR/syslog-counts.json"
    "$PY" "$HERE/report.py" report "$RESULTS_DIR" "$HERE/RESULTS.md" \
        --runs "$RUNS" --warmup "$WARMUP" --other-grants "$OTHER_GRANTS" --cold-runs "$COLD_RUNS" --record-mib "$RECORD_MIB" \
        --max-interference "$MAX_INTERFERENCE"
    log "done: $HERE/RESULTS.md"
}

if [[ ${1:-} == --inner ]]; then
    inner
    exit 0
fi

while (($#)); do
    case $1 in
    --only-baselines) ONLY_BASELINES=1 ;;
    --no-build) BUILD=0 ;;
    --runs) RUNS=${2:?}; shift ;;
    --warmup) WARMUP=${2:?}; shift ;;
    --other-grants) OTHER_GRANTS=${2:?}; shift ;;
    --cold-runs) COLD_RUNS=${2:?}; shift ;;
    --record-runs) RECORD_RUNS=${2:?}; shift ;;
    --wait-quiet) WAIT_QUIET=${2:?}; shift ;;
    --exec) EXEC_CMD=${2:?}; shift ;;
    --jitsudo) JITSUDO_BIN=${2:?}; shift ;;
    --sched) SCHED=${2:?}; shift ;;
    --max-interference) MAX_INTERFERENCE=${2:?}; shift ;;
    --max-attempts) MAX_ATTEMPTS=${2:?}; shift ;;
    --jitsudoctl) JITSUDOCTL_BIN=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
outer
