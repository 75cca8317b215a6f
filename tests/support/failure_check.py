#!/usr/bin/env python3
"""failure_check.py: makes a rank or a host fail in the middle of a run and checks how the run ends.

    failure_check.py --kind kill|host|freeze|stop|link --rank R --bound S --expect REGEX [--json] -- CMD...

Runs CMD (mpirun or launch/tori-mpirun running `tori generate`), waits until its output matches
--when (default: the generate log line that follows loading) and --after seconds more (decode is
under way), then fails rank R's process or host:
  kill  SIGKILL to rank R
  host  SIGKILL to every process in rank R's network namespace (a namespace host of launch/cluster)
  freeze  SIGSTOP to every process in that namespace (a host that hangs: its kernel still answers
        TCP, so mpirun's keepalive never fires; only Tori's watchdog probes can tell)
  stop  SIGSTOP to rank R (a hung peer)
  link  `ip -n NS link set eth0 down` for rank R's network namespace NS (timed from its return)
and checks: every other rank's process exits within --bound seconds of the failure, and so does
CMD, with a non-zero status; the output holds exactly one line starting "tori: error:", and it
matches --expect; with --json, stdout holds an {"aborted": true} record naming rank R among the
lost ranks and no summary record of a completed run. Prints one row of the failure table
(kind, last rank exited, CMD exited, the line) and PASSED, or FAILED with the reason (exit 1).
Afterwards the stopped rank is killed and the link is set up again, whatever happened.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time


def proc_children():
    """pid -> parent pid of every process."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            pass
    return parent


def descendants(root):
    parent = proc_children()
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in out}
        out |= frontier
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def world_rank(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                    return int(kv.split(b"=", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def netns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def alive(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except OSError:
        return False


def netns_name(pid):
    r = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True)
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True, choices=["kill", "host", "freeze", "stop", "link"])
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--bound", type=float, required=True, help="seconds from the failure to the last exit")
    ap.add_argument("--expect", required=True, help="regex the one 'tori: error:' line must match")
    ap.add_argument("--when", default=r"generate: model", help="regex of the output line after which to fail")
    ap.add_argument("--after", type=float, default=2.0, help="seconds after --when")
    ap.add_argument("--json", action="store_true", help="CMD runs tori --json: check the aborted record")
    ap.add_argument("--cmd-may-wait", action="store_true",
                    help="CMD (mpirun) may still run once every surviving rank exited: it waits for a frozen daemon")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out_lines, err_lines, seen = [], [], threading.Event()
    when = re.compile(a.when)

    stamps = {}  # id(list) -> [(monotonic time, line)]: the tail is printed with offsets from the failure

    def pump(stream, lines):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            stamps.setdefault(id(lines), []).append((time.monotonic(), line))
            if when.search(line):
                seen.set()

    pumps = [threading.Thread(target=pump, args=(proc.stdout, out_lines), daemon=True),
             threading.Thread(target=pump, args=(proc.stderr, err_lines), daemon=True)]
    for t in pumps:
        t.start()

    victim, stopped, link_ns, failed_at = None, [], None, None
    result = 1
    try:
        start = time.monotonic()
        while not seen.wait(0.1) and proc.poll() is None and time.monotonic() - start < 120:
            pass
        if not seen.is_set() or proc.poll() is not None:
            print("\n".join(err_lines[-30:] + out_lines[-10:]))
            print(f"FAILED: the run ended or never printed /{a.when}/ before the failure could be injected")
            return 1
        # The ranks are found first and the scan counts toward --after: reading a process's
        # /proc/PID/environ waits for its memory map lock, and a scan during the ranks' loading
        # once took 8.5 s, which put the failure at the very end of the run (ranks 0 and 1 had
        # finished; the test then measured the end of the run, not decode).
        seen_at = time.monotonic()
        ranks = {}
        for p in descendants(proc.pid):
            r = world_rank(p) if comm(p) == "tori" else None
            if r is not None:
                ranks[r] = p
        time.sleep(max(0.0, a.after - (time.monotonic() - seen_at)))
        if a.rank not in ranks:
            print(f"FAILED: no process of rank {a.rank} among {sorted(ranks)}")
            return 1
        victim = ranks[a.rank]
        gone = {victim}
        if a.kind in ("host", "freeze"):  # found before the clock starts: the scan took seconds on a loaded box
            ns = netns(victim)
            everything = [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if netns(p) == ns]
        failed_at = time.monotonic()
        if a.kind == "kill":
            os.kill(victim, signal.SIGKILL)
        elif a.kind == "stop":
            os.kill(victim, signal.SIGSTOP)
            stopped = [victim]
        elif a.kind in ("host", "freeze"):
            if ns == netns(os.getpid()):
                print("FAILED: --kind host needs the ranks in network namespaces of their own (launch/cluster)")
                return 1
            # A host dies at once: nothing on it may run (an exit handler, a last datagram) after
            # the first of its processes is gone. Stop them all, then kill them all.
            for sig in (signal.SIGSTOP, signal.SIGKILL) if a.kind == "host" else (signal.SIGSTOP,):
                for p in everything:
                    try:
                        os.kill(p, sig)
                    except OSError:
                        pass
            gone = {p for p in ranks.values() if netns(p) == ns} | {victim}
            if a.kind == "freeze":
                stopped = everything
        else:  # link
            link_ns = netns_name(victim)
            if not link_ns:
                print("FAILED: --kind link needs rank's process in a named network namespace (launch/cluster)")
                return 1
            # `ip -n` sets the link down from here (no `ip netns exec`, which remounts /sys and
            # took up to 5.5 s on a loaded box). The clock starts when the link is down: the
            # command's return, not its start (that delay once failed the bound on its own).
            subprocess.run(["ip", "-n", link_ns, "link", "set", "eth0", "down"], check=True)
            failed_at = time.monotonic()
        survivors = {r: p for r, p in ranks.items() if p not in gone}
        exited = {}
        deadline = failed_at + a.bound + 20
        while time.monotonic() < deadline and ((proc.poll() is None and not (a.cmd_may_wait and exited.keys() == survivors.keys()))
                                               or any(alive(p) for p in survivors.values())):
            now = time.monotonic()
            for r, p in survivors.items():
                if r not in exited and not alive(p):
                    exited[r] = now - failed_at
            time.sleep(0.02)
        cmd_exit = time.monotonic() - failed_at if proc.poll() is not None else None
        for r, p in survivors.items():
            if r not in exited and not alive(p):
                exited[r] = time.monotonic() - failed_at
        for t in pumps:
            t.join(5 if proc.poll() is not None else 1)  # a waiting mpirun keeps its pipes open
        tori_lines = [l for l in err_lines + out_lines if l.startswith("tori: error")]
        last = max(exited.values()) if len(exited) == len(survivors) and exited else None
        line = tori_lines[0] if tori_lines else "(none)"
        tail = sorted(stamps.get(id(err_lines), []))[-40:]
        print("\n".join(f"[{t - failed_at:+7.2f} s] {l}" for t, l in tail))
        print(f"| {a.kind} | rank {a.rank} | {last if last is None else round(last, 2)} s | "
              f"{cmd_exit if cmd_exit is None else round(cmd_exit, 2)} s | {line} |")
        problems = []
        if last is None:
            problems.append(f"ranks still running {a.bound + 20:.0f} s after the failure: "
                            f"{sorted(set(survivors) - set(exited))}")
        elif last > a.bound:
            problems.append(f"the last rank exited {last:.2f} s after the failure (bound {a.bound} s)")
        if cmd_exit is None and not a.cmd_may_wait:
            problems.append("the command did not exit")
        elif cmd_exit is None:
            pass  # mpirun waits for the frozen host's daemon; the ranks' exits are what is checked
        elif cmd_exit > a.bound:
            problems.append(f"the command exited {cmd_exit:.2f} s after the failure (bound {a.bound} s)")
        elif proc.returncode == 0:
            problems.append("the command exited with status 0")
        if len(tori_lines) != 1:
            problems.append(f"{len(tori_lines)} 'tori: error' lines (expected exactly one): {tori_lines}")
        elif not re.search(a.expect, tori_lines[0]):
            problems.append(f"the line does not match /{a.expect}/")
        if a.json:
            records = []
            for l in out_lines:
                try:
                    records.append(json.loads(l))
                except ValueError:
                    pass
            aborted = [r for r in records if isinstance(r, dict) and r.get("aborted") is True]
            if len(aborted) != 1 or a.rank not in aborted[0].get("lost_ranks", []):
                problems.append(f"no single aborted record naming rank {a.rank} on stdout: {aborted}")
            if any(isinstance(r, dict) and "decode_s_per_token" in r for r in records):
                problems.append("a summary record of a completed run was printed")
        for p in problems:
            print(f"FAILED: {p}")
        if not problems:
            print("PASSED")
            result = 0
        return result
    finally:
        for p in stopped:
            for s in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(p, s)
                except OSError:
                    pass
        if link_ns:
            subprocess.run(["ip", "-n", link_ns, "link", "set", "eth0", "up"])
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
