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
# sudo, opendoas, python3, build deps for sudo-rs), a cached, *non-setuid* sudo-rs
# build in /opt/sudo-rs, `cargo build --release` output in target/, and benches/.
# Everything else happens inside a private mount namespace (`unshare --mount
# --propagation private`) in which /etc, /var, /run, /opt and /dev are overlay
# mounts backed by a temporary directory:
#   - bench user `jtbench` (useradd inside the overlay),
#   - sudoers rule, /etc/doas.conf, /etc/jitsudo/jitsudo.toml, /var/lib/jitsudo,
#   - setuid-root copies /opt/jt/jitsudo and /opt/sudo-rs/bin/sudo-rs,
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
    ONLY_BASELINES=0
    BUILD=1
fi

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<EOF
options:
  --only-baselines     skip jitsudo (no build, no jitsudo rows)
  --no-build           do not run 'cargo build --release' (use existing target/release)
  --runs N             timed runs per command (default $RUNS)
  --warmup N           warmup runs per command (default $WARMUP)
  --other-grants N     cached grants of other users in the second scenario (default $OTHER_GRANTS)
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

as_user() {
    setpriv --reuid "$BENCH_USER" --regid "$BENCH_USER" --init-groups -- \
        env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/ USER="$BENCH_USER" \
        LOGNAME="$BENCH_USER" LANG=C.UTF-8 "$@"
}

inner() {
    [[ -n ${T:-} && -d $T ]] || die "inner: T not set"
    local out="$T/out"

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
    [[ -e /dev/log ]] && log "note: /dev/log exists on the host; replaced by the sink inside the namespace"
    rm -f /dev/log
    : >"$out/syslog.log"
    "$PY" "$HERE/syslog_sink.py" /dev/log "$out/syslog.log" "$T/sink.ready" &
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
        local ctl="$REPO/target/release/jitsudoctl"
        install -d -m 0755 /opt/jt
        install -o root -g root -m 4755 "$REPO/target/release/jitsudo" "$JT"
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
    fi

    # ---- machine description --------------------------------------------------------
    local jt_arg=(--jitsudo "$JT")
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

    # Markers in the syslog let report.py count records per invocation of each command.
    local mark=(--cleanup "/usr/bin/logger -u /dev/log -t bench-mark command-done")
    local hf=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic "${mark[@]}")

    log "scenario 1: all commands, one hyperfine run ($RUNS runs + $WARMUP warmup each)"
    (cd / && as_user /usr/bin/logger -u /dev/log -t bench-mark main-begin)
    (cd / && as_user "${hf[@]}" --export-json "$out/main.json" "${cmds[@]}")

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
        (cd / && as_user /usr/bin/logger -u /dev/log -t bench-mark grants-begin)
        (cd / && as_user "${hf[@]}" --export-json "$out/grants.json" \
            "/usr/bin/env /bin/true" "$JT /bin/true")
    fi

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

outer() {
    ((EUID == 0)) || die "run as root"
    ensure_packages hyperfine sudo opendoas python3 util-linux bsdutils
    ensure_sudo_rs

    if ((!ONLY_BASELINES)); then
        if ((BUILD)); then
            log "cargo build --release"
            (cd "$REPO" && cargo build --release)
        fi
        [[ -x $REPO/target/release/jitsudo && -x $REPO/target/release/jitsudoctl ]] ||
            die "target/release/jitsudo and jitsudoctl are needed (or use --only-baselines)"
    fi

    T=$(mktemp -d /tmp/jitsudo-bench.XXXXXX)
    chmod 0755 "$T"
    trap 'rm -rf "$T"' EXIT
    mkdir -p "$T/out"

    export T RUNS WARMUP OTHER_GRANTS ONLY_BASELINES BENCH_USER SUDO_RS_ROOT
    unshare --mount --propagation private -- "$BASH" ${BENCH_TRACE:+-x} "${BASH_SOURCE[0]}" --inner

    log "writing $RESULTS_DIR and $HERE/RESULTS.md"
    mkdir -p "$RESULTS_DIR"
    rm -f "$RESULTS_DIR"/{main,grants,machine}.json "$RESULTS_DIR"/{precheck.txt,syslog-counts.json}
    cp "$T/out"/*.json "$T/out/precheck.txt" "$RESULTS_DIR/"
    "$PY" "$HERE/report.py" syslog "$T/out/syslog.log" "$RESULTS_DIR/syslog-counts.json"
    "$PY" "$HERE/report.py" report "$RESULTS_DIR" "$HERE/RESULTS.md" \
        --runs "$RUNS" --warmup "$WARMUP" --other-grants "$OTHER_GRANTS"
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
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done
outer
