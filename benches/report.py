#!/usr/bin/env python3
"""Helpers for benches/run.sh (standard library only).

  report.py machine OUT.json [--repo DIR] [--jitsudo PATH] [--sudo-rs PATH]
      describe this machine and the tools under test (run as root, inside the
      benchmark's namespace so the setuid copies are found)
  report.py syslog SYSLOG.log OUT.json
      count the syslog records each benchmarked command sent per invocation
  report.py report RESULTS_DIR RESULTS.md [--runs N] [--warmup N] [--other-grants N]
      hyperfine JSON (RESULTS_DIR/main.json, grants.json, cold.json, journal.json)
      -> RESULTS.md + latency.svg + latency-cold.svg
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

# ----------------------------------------------------------------------------- machine


def _run(cmd, **kw):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20, **kw)
    except (OSError, subprocess.SubprocessError) as e:
        return f"(unavailable: {e})"
    out = (p.stdout or p.stderr).strip()
    return out if out else f"(no output, exit {p.returncode})"


def _first_line(s):
    return s.splitlines()[0] if s else s


def _read(path, default=""):
    try:
        return Path(path).read_text()
    except OSError:
        return default


def _has_cap_sys_resource():
    m = re.search(r"^CapBnd:\s*([0-9a-f]+)", _read("/proc/self/status"), re.M)
    return bool(int(m.group(1), 16) & (1 << 24)) if m else None  # CAP_SYS_RESOURCE = 24


def _sha256(path):
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _dpkg_version(pkg):
    return _run(["dpkg-query", "-W", "-f=${Version}", pkg])


def cmd_machine(args):
    cpuinfo = _read("/proc/cpuinfo")
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    lscpu = _run(["lscpu"])

    def lscpu_field(name):
        mm = re.search(rf"^{re.escape(name)}:\s*(.+)$", lscpu, re.M)
        return mm.group(1).strip() if mm else None

    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release"), re.M)
    u = platform.uname()
    info = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": m.group(1).strip() if m else lscpu_field("Model name"),
        "cpu_mhz": (re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M) or [None, None])[1],
        "cpus_online": os.cpu_count(),
        "threads_per_core": lscpu_field("Thread(s) per core"),
        "hypervisor": lscpu_field("Hypervisor vendor"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or None,
        "cap_sys_resource": _has_cap_sys_resource(),
        "sched": os.environ.get("SCHED"),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "os": osr.group(1) if osr else None,
        "kernel": f"{u.system} {u.release} {u.machine}",
        "glibc": _dpkg_version("libc6"),
        "pam": _dpkg_version("libpam0g"),
        "versions": {
            "hyperfine": _run(["hyperfine", "--version"]),
            "sudo": _first_line(_run(["sudo", "-V"])) + f" (Debian package {_dpkg_version('sudo')})",
            "doas": f"OpenDoas (Debian package opendoas {_dpkg_version('opendoas')})",
            "python3": platform.python_version(),
        },
    }
    if args.sudo_rs:
        info["versions"]["sudo-rs"] = (
            _first_line(_run([args.sudo_rs, "--version"])) + " (cargo install, release)"
        )
    if args.jitsudo:
        repo = args.repo or "."
        ver = _run([args.jitsudo, "--version"])
        cargo_ver = re.search(r'^version\s*=\s*"([^"]+)"', _read(Path(repo) / "Cargo.toml"), re.M)
        rev = _run(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
        if "unavailable" in rev or "fatal" in rev or "exit" in rev:
            rev = "no commit yet"
        dirty = _run(["git", "-C", repo, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
        dirty = "" if dirty.startswith("(no output") else " + uncommitted changes"
        ldd = _run(["ldd", args.jitsudo])
        linkage = "static" if ("not a dynamic" in ldd or "statically linked" in ldd) else "dynamic"
        libs = [l.split()[0] for l in ldd.splitlines() if "=>" in l]
        info["versions"]["jitsudo"] = (
            f"{_first_line(ver) if ver.lower().startswith('jitsudo') else 'jitsudo ' + (cargo_ver.group(1) if cargo_ver else '?')}"
            f" (git {rev}{dirty}; release build; {linkage}ally linked"
            + (f" against {', '.join(libs)}" if libs else "")
            + f"; {os.path.getsize(args.jitsudo) // 1024} KiB; sha256 {_sha256(args.jitsudo)[:16]}…"
            + (f"; {args.jitsudo_source}" if args.jitsudo_source else "")
            + (f", from `{os.environ['JT_BUILD_DESC']}`" if os.environ.get("JT_BUILD_DESC") else "")
            + ")"
        )
        info["versions"]["rustc"] = _run(["rustc", "--version"])
    Path(args.out).write_text(json.dumps(info, indent=2) + "\n")


# ------------------------------------------------------------------------------ syslog

MARK_TAG = "bench-mark"


def _tag(line):
    # "<PRI>Mmm dd hh:mm:ss TAG[pid]: msg" (glibc) or "<PRI>... TAG: msg"
    m = re.match(r"<\d+>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?([^\s:\[]+)", line)
    return m.group(1) if m else "?"


def cmd_syslog(args):
    lines = Path(args.log).read_text(errors="replace").splitlines()
    scenarios = {}
    current = None
    section = None
    for line in lines:
        if MARK_TAG in line:
            msg = line.rsplit(":", 1)[-1].strip()
            if msg.endswith("-begin"):  # a repeated attempt replaces the earlier one
                current = scenarios[msg[: -len("-begin")]] = []
                section = {"records": 0, "tags": {}, "samples": []}
            elif msg == "command-done" and current is not None:
                current.append(section)
                section = {"records": 0, "tags": {}, "samples": []}
            continue
        if section is None:
            continue
        section["records"] += 1
        t = _tag(line)
        section["tags"][t] = section["tags"].get(t, 0) + 1
        # up to 3 samples, distinct once timestamp and pid are ignored
        norm = re.sub(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d |\[\d+\]", "", line)
        if len(section["samples"]) < 3 and norm not in section.setdefault("_seen", set()):
            section["_seen"].add(norm)
            section["samples"].append(line)
    for sections in scenarios.values():
        for sec in sections:
            sec.pop("_seen", None)
    Path(args.out).write_text(json.dumps(scenarios, indent=2) + "\n")


# ------------------------------------------------------------------------------- timed


def _cpu_ticks():
    f = _read("/proc/stat").splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    idle = v[3] + v[4]  # idle + iowait
    busy = sum(v[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy, idle


def _proc_ticks(pid):
    try:
        st = _read(f"/proc/{pid}/stat")
        fields = st[st.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (ValueError, IndexError):
        return 0


def cmd_timed(args):
    """Run a command; record how much CPU time *other* processes used meanwhile."""
    import resource
    import time

    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    b0, i0 = _cpu_ticks()
    s0 = _proc_ticks(args.sink_pid) if args.sink_pid else 0
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    rc = subprocess.run(cmd).returncode
    wall = time.monotonic() - t0
    b1, i1 = _cpu_ticks()
    s1 = _proc_ticks(args.sink_pid) if args.sink_pid else 0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    sink = (s1 - s0) / hz
    busy = (b1 - b0) / hz
    total = busy + (i1 - i0) / hz
    foreign = max(0.0, busy - ours - sink)
    info = {
        "attempt": args.attempt,
        "wall_s": round(wall, 3),
        "cpus": ncpu,
        "busy_cpu_s": round(busy, 3),
        "benchmark_cpu_s": round(ours, 3),
        "syslog_sink_cpu_s": round(sink, 3),
        "foreign_cpu_s": round(foreign, 3),
        "foreign_pct": round(100 * foreign / total, 1) if total else 0.0,
        "exit_code": rc,
    }
    Path(args.out).write_text(json.dumps(info, indent=2) + "\n")
    sys.exit(rc)


# ------------------------------------------------------------------------------ report


def label(cmd):
    if cmd == "/bin/true":
        return "/bin/true (one exec)"
    if cmd.startswith("/usr/bin/env"):
        return "floor: /usr/bin/env /bin/true (two execs)"
    if "jitsudo" in cmd:
        return "jitsudo /bin/true"
    if "sudo-rs" in cmd:
        return "sudo-rs -n /bin/true"
    if "doas" in cmd:
        return "doas /bin/true"
    if "sudo" in cmd:
        return "sudo -n /bin/true"
    return cmd


def key(cmd):
    lab = label(cmd)
    if lab.startswith("floor"):
        return "floor"
    return lab.split()[0].split("/")[-1]  # true, jitsudo, sudo-rs, doas, sudo


def stats(res):
    t = sorted(res["times"])
    n = len(t)

    def pct(p):
        return t[min(n - 1, max(0, round(p / 100 * (n - 1))))]

    return {
        "n": n,
        "median": statistics.median(t),
        "mean": statistics.fmean(t),
        "stddev": statistics.stdev(t) if n > 1 else 0.0,
        "min": t[0],
        "p5": pct(5),
        "p95": pct(95),
        "p99": pct(99),
        "max": t[-1],
        "user": res.get("user"),
        "system": res.get("system"),
    }


def ms(x):
    return f"{x * 1000:.3f} ms"


def cmd_report(args):
    rd = Path(args.results_dir)
    main = json.loads((rd / "main.json").read_text())["results"]
    grants_path = rd / "grants.json"
    grants = json.loads(grants_path.read_text())["results"] if grants_path.exists() else None

    def optional(name):
        path = rd / f"{name}.json"
        return json.loads(path.read_text())["results"] if path.exists() else None

    cold = optional("cold")
    journal = optional("journal")
    record = optional("record")
    machine = json.loads((rd / "machine.json").read_text()) if (rd / "machine.json").exists() else {}
    slog_path = rd / "syslog-counts.json"
    slog = json.loads(slog_path.read_text()) if slog_path.exists() else {}
    per_run = args.runs + args.warmup

    def interference(name):
        p = rd / f"{name}-interference.json"
        return json.loads(p.read_text()) if p.exists() else None

    def interference_line(name):
        i = interference(name)
        if not i:
            return None
        bad = round(i["foreign_pct"]) > args.max_interference  # the same rule as run.sh
        return (("**Warning: not a clean run.** " if bad else "")
                + f"While this run took {i['wall_s']:.1f} s, other processes on the machine used "
                f"{i['foreign_pct']}% of its CPU time ({i['foreign_cpu_s']} CPU-s; the benchmark "
                f"itself {i['benchmark_cpu_s']} CPU-s, the syslog sink {i['syslog_sink_cpu_s']} CPU-s); "
                f"attempt {i['attempt']}, runs above {args.max_interference:g}% are repeated.")

    S = {key(r["command"]): stats(r) for r in main}
    floor = S.get("floor")
    G = {key(r["command"]): stats(r) for r in grants} if grants else {}

    out = []
    w = out.append
    w("# jitsudo latency benchmark")
    w("")
    w("Generated by `benches/run.sh` (do not edit by hand; re-run the script). "
      f"Raw hyperfine data: [`results/`](results/).")
    w("")
    w("What is measured: wall-clock time of one complete invocation that elevates to root "
      "and runs `/bin/true`, started by an unprivileged user (`jtbench`), measured by "
      f"`hyperfine -N` (no shell), {args.runs} runs after {args.warmup} warmup runs per command. "
      "The floor is `/usr/bin/env /bin/true`: two `execve`s, the least any wrapper that "
      "execs the target can cost.")
    w("")

    # -- machine
    w("## Machine")
    w("")
    if machine:
        rows = [
            ("Date", machine.get("date_utc")),
            ("CPU", f"{machine.get('cpu_model')} ({machine.get('cpu_mhz')} MHz)"),
            ("CPUs online", f"{machine.get('cpus_online')} (threads per core: {machine.get('threads_per_core')})"),
            ("Hypervisor", machine.get("hypervisor") or "none detected"),
            ("CPU governor", machine.get("cpu_governor") or "n/a (no cpufreq)"),
            ("Memory", f"{machine.get('memory_gib')} GiB"),
            ("OS", machine.get("os")),
            ("Kernel", machine.get("kernel")),
            ("glibc / PAM", f"{machine.get('glibc')} / {machine.get('pam')}"),
        ]
        for k, v in machine.get("versions", {}).items():
            rows.append((k, v))
        w("| | |")
        w("|---|---|")
        for k, v in rows:
            w(f"| {k} | {str(v).replace('|', '/')} |")
    else:
        w("(machine.json missing)")
    w("")

    # -- main table
    w("## Scenario 1: one hyperfine run, all commands")
    w("")
    if interference_line("main"):
        w(interference_line("main"))
        w("")
    w("![latency distributions](results/latency.svg)")
    w("")
    w("| command | median | mean ± σ | min | p95 | median / floor | syslog records per run |")
    w("|---|--:|--:|--:|--:|--:|--:|")
    sl_main = slog.get("main", [])
    for i, r in enumerate(main):
        s = stats(r)
        ratio = f"{s['median'] / floor['median']:.2f}×" if floor else "n/a"
        recs = f"{sl_main[i]['records'] / per_run:.1f}" if i < len(sl_main) else "?"
        w(f"| `{r['command']}` | {ms(s['median'])} | {ms(s['mean'])} ± {s['stddev'] * 1000:.3f} | "
          f"{ms(s['min'])} | {ms(s['p95'])} | {ratio} | {recs} |")
    w("")

    # -- scenario 2
    if grants:
        w(f"## Scenario 2: jitsudo with {args.other_grants:,} other users' grants cached")
        w("")
        w(f"A second hyperfine run, right after the first, with {args.other_grants:,} cache files "
          "`/var/lib/jitsudo/users/<uid>.json` for other uids (copies of the bench user's own "
          "cache file, so of realistic size). A lookup must touch only the caller's file, so "
          "the time should not change. The floor is re-measured in the same run to show drift.")
        w("")
        if interference_line("grants"):
            w(interference_line("grants"))
            w("")
        w("| command | median | mean ± σ | min | p95 | median / floor (this run) |")
        w("|---|--:|--:|--:|--:|--:|")
        gfloor = G.get("floor")
        for r in grants:
            s = stats(r)
            ratio = f"{s['median'] / gfloor['median']:.2f}×" if gfloor else "n/a"
            w(f"| `{r['command']}` | {ms(s['median'])} | {ms(s['mean'])} ± {s['stddev'] * 1000:.3f} | "
              f"{ms(s['min'])} | {ms(s['p95'])} | {ratio} |")
        w("")

    # -- scenario 3
    if cold:
        C = {key(r["command"]): stats(r) for r in cold}
        cfloor, cjt = C.get("floor"), C.get("jitsudo")
        w("## Scenario 3: cold caches")
        w("")
        w(f"The same commands, {args.cold_runs} runs each, with the page, dentry and inode caches "
          "dropped before every run (`sync; echo 3 > /proc/sys/vm/drop_caches`, done by the "
          "untimed `--prepare` step `benches/bench-prep.c`): every binary, library, PAM module "
          "and configuration file is read from disk again, as on the first use after a boot "
          "or under memory pressure. Scenario 1 is the warm case.")
        w("")
        if interference_line("cold"):
            w(interference_line("cold"))
            w("")
        w("![latency distributions, cold caches](results/latency-cold.svg)")
        w("")
        w("| command | median | mean ± σ | min | p95 | median / floor (this run) | slower than jitsudo |")
        w("|---|--:|--:|--:|--:|--:|--:|")
        for r in cold:
            c = stats(r)
            ratio = f"{c['median'] / cfloor['median']:.2f}×" if cfloor else "n/a"
            vs = f"{c['median'] / cjt['median']:.2f}×" if cjt else "n/a"
            w(f"| `{r['command']}` | {ms(c['median'])} | {ms(c['mean'])} ± {c['stddev'] * 1000:.3f} | "
              f"{ms(c['min'])} | {ms(c['p95'])} | {ratio} | {vs} |")
        w("")

    # -- scenario 4
    if journal:
        w("## Scenario 4: the host journal")
        w("")
        w("jitsudo appends a hash-chained record to `/var/lib/jitsudo/journal` before every exec "
          "(`[journal] enabled = true`, the default, which scenarios 1–3 use). One hyperfine run "
          "of `jitsudo /bin/true` under three configurations, switched by the untimed "
          "`--prepare` step before each run: journal off; on (the default: written, not "
          "fsynced); durable (`durable = true`: fsync before the command runs).")
        w("")
        if interference_line("journal"):
            w(interference_line("journal"))
            w("")
        J = [(r["command"], stats(r)) for r in journal]
        base = next((j for name, j in J if name.endswith("no-journal")), None)
        w("| configuration | median | mean ± σ | min | p95 | median / journal off |")
        w("|---|--:|--:|--:|--:|--:|")
        for name, j in J:
            ratio = f"{j['median'] / base['median']:.2f}×" if base else "n/a"
            w(f"| {name.split(', ')[-1]} | {ms(j['median'])} | {ms(j['mean'])} ± {j['stddev'] * 1000:.3f} | "
              f"{ms(j['min'])} | {ms(j['p95'])} | {ratio} |")
        w("")

    # -- scenario 5
    rec_ratio = None
    if record:
        mib = args.record_mib
        w("## Scenario 5: recorded output")
        w("")
        w(f"`jitsudo /usr/bin/cat FILE` of {mib} MiB of random bytes, its output read through "
          "hyperfine's pipe (`--output=pipe`, like a pager or a pipeline reading it), with the "
          "default config and with `[record] always = true`, switched by the untimed "
          "`--prepare` step. Unrecorded, cat writes straight into the pipe; recorded, the "
          "command's output goes through the supervisor, which reads it and passes its copy on, "
          "while its recorder thread appends the same bytes to the recording's "
          "`stdout` file and hash-chains each chunk (`/var/log/jitsudo-io`, on the overlay's "
          "disk-backed upper directory). The reference row writes the same bytes to a file on "
          "the same disk with `tee` and no jitsudo: what storing the output costs at all, "
          "before any hashing or relaying.")
        w("")
        if interference_line("record"):
            w(interference_line("record"))
            w("")
        R = [(r["command"].split(", ")[-1], stats(r)) for r in record]
        plain = next((x for name, x in R if name == "default"), None)
        w("| run | median | mean ± σ | min | throughput (median) | vs unrecorded |")
        w("|---|--:|--:|--:|--:|--:|")
        for name, x in R:
            thr = mib / x["median"]
            vs = f"{(mib / x['median']) / (mib / plain['median']) * 100:.0f} %" if plain else "n/a"
            run = {"record": "recorded", "default": "unrecorded",
                   "tee": "reference: `cat FILE \\| tee OUT`, no jitsudo"}.get(name, name)
            w(f"| {run} | {ms(x['median'])} | {ms(x['mean'])} ± {x['stddev'] * 1000:.3f} | "
              f"{ms(x['min'])} | {thr:,.0f} MiB/s | {vs} |")
        w("")
        rec = next((x for name, x in R if name == "record"), None)
        if plain and rec:
            rec_ratio = plain["median"] / rec["median"]

    # -- targets
    w("## Targets")
    w("")
    w("All ratios use medians from the same hyperfine run unless noted.")
    w("")
    w("| target | measured | jitsudo median needed (here) | result |")
    w("|---|--:|--:|:-:|")
    jt = S.get("jitsudo")

    def row(name, value, bound, ok):
        w(f"| {name} | {value} | {bound} | {'PASS' if ok else '**FAIL**'} |")

    if jt and floor:
        r = jt["median"] / floor["median"]
        row("jitsudo ≤ 1.3× the floor (`/usr/bin/env /bin/true`)", f"{r:.2f}×",
            f"≤ {ms(1.3 * floor['median'])}", r <= 1.3)
        for k, need in (("doas", 2.0), ("sudo-rs", 2.5), ("sudo", 2.5)):
            if k in S:
                r = S[k]["median"] / jt["median"]
                b = S[k]["median"] / need
                row(f"jitsudo ≥ {need}× faster than {k}", f"{r:.2f}×",
                    f"≤ {ms(b)} ({b / floor['median']:.2f}× floor)", r >= need)
        if G.get("jitsudo"):
            r = G["jitsudo"]["median"] / jt["median"]
            extra = ""
            if G.get("floor"):
                rn = (G["jitsudo"]["median"] / G["floor"]["median"]) / (jt["median"] / floor["median"])
                extra = f" (floor-normalised: {rn:.2f}×)"
            row(f"jitsudo with {args.other_grants:,} other grants ≤ 1.2× its own time "
                "(scenario 2 median / scenario 1 median)", f"{r:.2f}×{extra}",
                f"≤ {ms(1.2 * jt['median'])}", r <= 1.2)
        if rec_ratio is not None:
            row("recorded output throughput ≥ 50 % of unrecorded (scenario 5)",
                f"{rec_ratio * 100:.0f} %", "", rec_ratio >= 0.5)
    else:
        w("| (jitsudo not measured: `--only-baselines`) | | | n/a |")
    w("")

    # -- method
    w("## Method and fairness")
    w("")
    w("- Everything runs inside `unshare --mount --propagation private`; `/etc`, `/var`, "
      "`/run`, `/opt` and `/dev` are overlay mounts over a temporary directory, so the bench "
      "user, sudoers rule, doas.conf, jitsudo config, grant cache and the setuid copies "
      "(`/opt/jt/jitsudo`, `/opt/sudo-rs/bin/sudo-rs`, root 4755) vanish afterwards.")
    w("- The user `jtbench` is created with `useradd` in the overlay. `hyperfine` itself runs as "
      "that user (`setpriv --reuid --regid --init-groups`, no no-new-privs, so setuid works) "
      "with a minimal environment, so the timed process tree contains no root-owned wrapper.")
    w("- Rules: sudo and sudo-rs share `/etc/sudoers.d/jitsudo-bench` "
      "(`jtbench ALL=(root) NOPASSWD: /bin/true`, `Defaults:jtbench !lecture`) on top of "
      "Debian's stock `/etc/sudoers` and PAM stack (`/etc/pam.d/sudo`); doas: "
      "`permit nopass jtbench as root cmd /bin/true`; jitsudo: one cached grant for "
      "`/bin/true` minted by `jitsudoctl mint` and imported with `jitsudo --import -`.")
    host_log = _read(rd / "host-dev-log.txt").strip()
    host_log = {"none": "The host has no `/dev/log`, so inside the namespace `/dev/log` is",
                "socket": "The host's `/dev/log` is replaced, inside the namespace only, by"}.get(
        host_log, "`/dev/log` is")
    w(f"- Logging stays on for every tool. {host_log} a "
      "Unix datagram socket served by `benches/syslog_sink.py` (bound in the namespace's "
      "`/dev` overlay), which every tool uses; jitsudo's `[log] syslog_socket` points at the same socket with "
      "`require = true`. The last column of the first table is the number of records each "
      "tool sent per invocation (from markers `logger` writes between commands).")
    if machine.get("cap_sys_resource") is False:
        w("- This machine's capability bounding set lacks CAP_SYS_RESOURCE (a container "
          "restriction), so in the PAM-based tools (sudo, sudo-rs, doas) `pam_limits` fails to "
          "raise some limits and logs 2–3 extra debug records per run (visible below). That costs "
          "them a few failed `setrlimit` calls and datagrams, microseconds at most.")
    la = [(_read(rd / f"loadavg-{w_}.txt").split() or ["?"])[0] for w_ in ("before", "after")]
    busy = _read(rd / "cpu-busy-before.txt").strip() or "?"
    w(f"- Other load: the CPUs were {busy}% busy in the 3 s before the run "
      "(`--wait-quiet` waits for < 10%); 1-minute load average before / after the runs "
      f"{la[0]} / {la[1]} on {machine.get('cpus_online', '?')} CPUs (it lags by a minute, "
      "so it still counts earlier work). Interference shows up as outliers: compare median "
      "and mean, and the long tails in the plot. Medians are used for all ratios.")
    sched = machine.get("sched")
    if sched == "fifo":
        w("- hyperfine (and so every command it times, which inherit it across `setpriv` and the "
          "setuid exec) and the syslog sink run with `chrt -f 10` (SCHED_FIFO), the same for all "
          "commands, so that other work on the machine cannot preempt them; it still shares the "
          "other CPU, caches and memory bandwidth (see the interference figure per run).")
    elif sched == "nice":
        w("- hyperfine (and so every command it times) and the syslog sink run at nice -10.")
    w("- Each command is run once as the user before timing and must exit 0 "
      "([`results/precheck.txt`](results/precheck.txt)); hyperfine also fails on a non-zero exit.")
    w("- Scenario 2 is a separate hyperfine run after the others (the cache directory "
      "is a fixed path, so both states cannot be in one run). Scenarios 3 and 4 need root "
      "between timed runs (dropping caches, switching the config): hyperfine, still running "
      "as the user, calls `/opt/jt/bench-prep` (`benches/bench-prep.c`, setuid root only "
      "inside the namespace) as its untimed `--prepare` step.")
    w("")
    if slog.get("main"):
        w("<details><summary>Sample syslog records per command</summary>")
        w("")
        w("```")
        for i, r in enumerate(main):
            if i < len(sl_main):
                w(f"# {r['command']}")
                for line in sl_main[i]["samples"]:
                    w(line)
        w("```")
        w("")
        w("</details>")
        w("")

    Path(args.out).write_text("\n".join(out))

    series = [(label(r["command"]), r["times"]) for r in main]
    if grants:
        for r in grants:
            if key(r["command"]) == "jitsudo":
                series.append((f"jitsudo /bin/true, {args.other_grants:,} other grants", r["times"]))
    (rd / "latency.svg").write_text(svg_violins(series))
    if cold:
        (rd / "latency-cold.svg").write_text(
            svg_violins([(label(r["command"]), r["times"]) for r in cold], "cold caches"))


# -------------------------------------------------------------------------------- svg

COLORS = {"true": "#9a9a9a", "floor": "#4d4d4d", "jitsudo": "#1f77b4", "doas": "#ff7f0e",
          "sudo-rs": "#2ca02c", "sudo": "#d62728", "jitsudo-grants": "#17becf"}


def _esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_violins(series, what="warm caches"):
    """One row per command: mirrored histogram of run times, p5–p95 bar, median tick."""
    W, left, right, top, row_h, bottom = 960, 330, 30, 50, 56, 50
    H = top + row_h * len(series) + bottom
    all_t = sorted(t for _, ts in series for t in ts)
    p995 = all_t[min(len(all_t) - 1, int(0.995 * (len(all_t) - 1)))]
    xmax = p995 * 1.05
    plot_w = W - left - right

    def X(t):
        return left + plot_w * min(t, xmax) / xmax

    # tick step in ms
    span_ms = xmax * 1000
    step = next(s for s in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 50, 100) if span_ms / s <= 12)
    o = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16">Latency per invocation, {what} '
        f"(wall clock, ms; {len(series[0][1])} runs per command; axis clipped at {xmax * 1000:.2f} ms)</text>",
    ]
    k = 0.0
    while k <= span_ms + 1e-9:
        x = left + plot_w * (k / span_ms)
        o.append(f'<line x1="{x:.1f}" y1="{top - 5}" x2="{x:.1f}" y2="{H - bottom}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{x:.1f}" y="{H - bottom + 18}" text-anchor="middle">{k:g}</text>')
        k += step
    o.append(f'<text x="{left + plot_w / 2}" y="{H - 10}" text-anchor="middle">milliseconds</text>')
    bins = 120
    for i, (name, ts) in enumerate(series):
        color = COLORS.get(name.split(" ")[0].rstrip(":").replace("/bin/true", "true"), "#8c564b")
        if "other grants" in name:
            color = COLORS["jitsudo-grants"]
        cy = top + row_h * i + row_h / 2
        counts = [0] * bins
        over = 0
        for t in ts:
            if t > xmax:
                over += 1
                continue
            counts[min(bins - 1, int(t / xmax * bins))] += 1
        peak = max(counts) or 1
        half = row_h * 0.42
        nz = [b for b, c in enumerate(counts) if c]
        pts_top, pts_bot = [], []
        for b in range(nz[0], nz[-1] + 1) if nz else []:
            c = counts[b]
            x = left + plot_w * (b + 0.5) / bins
            h = half * c / peak
            pts_top.append(f"{x:.1f},{cy - h:.1f}")
            pts_bot.append(f"{x:.1f},{cy + h:.1f}")
        poly = " ".join(pts_top + list(reversed(pts_bot)))
        o.append(f'<polygon points="{poly}" fill="{color}" fill-opacity="0.45" stroke="{color}" stroke-width="1"/>')
        st = sorted(ts)
        n = len(st)
        p5, p95 = st[int(0.05 * (n - 1))], st[int(0.95 * (n - 1))]
        med = statistics.median(st)
        o.append(f'<line x1="{X(p5):.1f}" y1="{cy:.1f}" x2="{X(p95):.1f}" y2="{cy:.1f}" stroke="black" stroke-width="2"/>')
        o.append(f'<line x1="{X(med):.1f}" y1="{cy - half:.1f}" x2="{X(med):.1f}" y2="{cy + half:.1f}" stroke="black" stroke-width="2.5"/>')
        o.append(f'<text x="{left - 10}" y="{cy - 2:.1f}" text-anchor="end">{_esc(name)}</text>')
        note = f"median {med * 1000:.2f} ms" + (f", {over} runs beyond axis" if over else "")
        o.append(f'<text x="{left - 10}" y="{cy + 14:.1f}" text-anchor="end" font-size="11" fill="#555">{note}</text>')
    o.append(f'<text x="{W - right}" y="{top - 12}" text-anchor="end" font-size="11" fill="#555">'
             "shape: histogram of runs; bar: p5–p95; tick: median</text>")
    o.append("</svg>")
    return "\n".join(o) + "\n"


# -------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("machine")
    a.add_argument("out")
    a.add_argument("--repo")
    a.add_argument("--jitsudo")
    a.add_argument("--jitsudo-source", help="where the setuid copy came from (for the report)")
    a.add_argument("--sudo-rs")
    a.set_defaults(fn=cmd_machine)
    a = sub.add_parser("syslog")
    a.add_argument("log")
    a.add_argument("out")
    a.set_defaults(fn=cmd_syslog)
    a = sub.add_parser("timed")
    a.add_argument("--out", required=True)
    a.add_argument("--sink-pid", type=int)
    a.add_argument("--attempt", type=int, default=1)
    a.add_argument("cmd", nargs=argparse.REMAINDER)
    a.set_defaults(fn=cmd_timed)
    a = sub.add_parser("report")
    a.add_argument("results_dir")
    a.add_argument("out")
    a.add_argument("--runs", type=int, default=1000)
    a.add_argument("--warmup", type=int, default=50)
    a.add_argument("--other-grants", type=int, default=10000)
    a.add_argument("--cold-runs", type=int, default=100)
    a.add_argument("--record-mib", type=int, default=200)
    a.add_argument("--max-interference", type=float, default=5.0)
    a.set_defaults(fn=cmd_report)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
