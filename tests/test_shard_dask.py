"""tools/gpt2in_dask_shard.py against the one-machine `gpt2in shard` (run by
tests/test_shard_dask.sh): a cluster of two worker processes (`dask
scheduler` and `dask worker`, as the README says) must write the same bytes
(shards and manifest); so must a run that loses a worker process in the
middle of a unit, and, on a LocalCluster, a rerun after the driver (with its
scheduler and workers) was killed, which must reuse the complete units and
redo one whose tokens were damaged (the sidecar's sha256 catches it).

Usage: /usr/bin/python3 tests/test_shard_dask.py PATH-TO-gpt2in
"""
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tools", "gpt2in_dask_shard.py")
PY = sys.executable
NAME = "t"
OPTS = ["--name", NAME, "--shard-tokens", "3000", "--val-tokens", "1100"]
HANG = 120  # seconds: only a guard against a hung cluster, not a timing check

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def make_inputs(d):
    """Twelve inputs of several kinds, in a fixed order: JSON Lines (one
    gzip-compressed), whole-file text documents, a --split-lines-free mix."""
    rng = random.Random(18)
    words = ("the of and to in is was for on that with as by at from it an be this are "
             "corpus token shard worker cluster Dask GPT-2 naïve café 東京 emoji 🙂 1984 "
             "don't we'll <|endoftext|> x\ty").split(" ")

    def doc():
        return " ".join(rng.choice(words) for _ in range(rng.randint(5, 120)))

    names = []
    for i in range(12):
        if i % 3 == 2:
            name = f"doc{i:02d}.txt"
            data = (doc() + "\n" + doc()).encode()
        else:
            name = f"part{i:02d}.jsonl"
            lines = [json.dumps({"id": j, "text": doc()}, ensure_ascii=(j % 2 == 0))
                     for j in range(rng.randint(3, 25))]
            data = ("\n".join(lines) + "\n").encode()
            if i == 4:
                name += ".gz"
                data = gzip.compress(data, mtime=0)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        names.append(name)
    return names


def outputs(d):
    """{file: bytes} of the shards and manifest (not the units folder)."""
    got = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                got[name] = f.read()
    return got


def same_as_ref(d, ref, what):
    got = outputs(d)
    check(sorted(got) == sorted(ref), f"{what}: the same files ({len(got)})")
    diff = [n for n in ref if got.get(n) != ref[n]]
    check(not diff, f"{what}: byte-identical shards and manifest" + (f" (differ: {diff})" if diff else ""))
    try:
        man = json.loads(got[f"{NAME}_manifest.json"])
        check(man.get("complete") is True, f"{what}: the manifest says complete")
    except (KeyError, ValueError):
        check(False, f"{what}: a manifest")


def driver(work, prog, out, extra, **kw):
    argv = [PY, DRIVER, "--gpt2in", prog, "--out", out] + extra + OPTS + INPUTS
    return subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)


def finish(p, what):
    try:
        out, _ = p.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        print(out.decode(errors="replace"))
        check(False, f"{what}: finished within {HANG} s")
        return ""
    text = out.decode(errors="replace")
    if p.returncode != 0:
        print(text)
    check(p.returncode == 0, f"{what}: exit status 0 (got {p.returncode})")
    return text


def start_cluster(work):
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1`, each in
    its own process group; returns (scheduler file, [Popen])."""
    sfile = os.path.join(work, "scheduler.json")
    log = open(os.path.join(work, "cluster.log"), "wb")
    kw = dict(cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    procs = [subprocess.Popen([PY, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", sfile,
                               "--host", "127.0.0.1", "--port", "0", "--no-dashboard"], **kw)]
    deadline = time.monotonic() + HANG
    while not os.path.exists(sfile) and time.monotonic() < deadline and procs[0].poll() is None:
        time.sleep(0.05)
    procs.append(subprocess.Popen([PY, "-m", "distributed.cli.dask_worker", "--scheduler-file", sfile,
                                   "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                   "--local-directory", os.path.join(work, "dask-worker")], **kw))
    return sfile, procs


def stop_cluster(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def wrapper(path, body):
    """A stand-in for gpt2in that runs the real one, with a fault first."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def check_partition():
    """Units are consecutive, cover every input once, hold unit_bytes, and
    keep their command line short whatever the files' sizes."""
    import runpy
    part = runpy.run_path(DRIVER)["partition"]
    check(part([5, 5, 5, 5, 5], 10) == [(0, 2), (2, 4), (4, 5)], "units close once they hold --unit-bytes")
    check(part([7], 1) == [(0, 1)] and part([], 1) == [], "one input, no input")
    # 20,000 empty files of 200-byte names: 4 MB of names, over Linux's 2 MB
    lens = [200] * 20000
    units = part([0] * 20000, 128 << 20, lens)
    flat = [i for a, b in units for i in range(a, b)]
    check(flat == list(range(20000)), "units cover the inputs in order")
    check(max(sum(lens[a:b]) + (b - a) for a, b in units) <= 256 << 10,
          f"no unit's input names exceed 256 KiB ({len(units)} units)")


def check_remove_units():
    """At the end the units folder loses its own files only (tester9 T1):
    a user's files in a folder named NAME_units stay, and the folder."""
    import runpy
    remove = runpy.run_path(DRIVER)["_remove_units"]
    d = tempfile.mkdtemp(prefix="gpt2in-dask-units-")
    try:
        own = ["000000.tok", "000000.tok.json", ".000003.tok.tmp.AbC123", ".000003.tok.json.tmp.xYz789"]
        mine = ["notes.txt", "000000.txt", ".000003.tok.tmp.keep", "000000.tok.bak"]
        for n in own + mine:
            with open(os.path.join(d, n), "w") as f:
                f.write("x")
        os.mkdir(os.path.join(d, "photos"))
        remove(d)
        left = sorted(os.listdir(d)) if os.path.isdir(d) else []
        check(left == sorted(mine + ["photos"]), f"the driver removes its unit files only (left: {left})")
        for n in mine:
            os.unlink(os.path.join(d, n))
        os.rmdir(os.path.join(d, "photos"))
        with open(os.path.join(d, "000001.tok"), "w") as f:
            f.write("x")
        remove(d)
        check(not os.path.exists(d), "the driver removes its emptied units folder")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    global INPUTS
    real = os.path.abspath(sys.argv[1])
    check_partition()
    check_remove_units()
    work = tempfile.mkdtemp(prefix="gpt2in-dask-")
    cluster = []
    # the workers' scratch folders, left by the killed ones too
    os.environ["DASK_TEMPORARY_DIRECTORY"] = os.path.join(work, "dask-tmp")
    try:
        INPUTS = make_inputs(work)
        sfile, cluster = start_cluster(work)
        r = subprocess.run([real, "shard", "--quiet", "--out", "ref"] + OPTS + INPUTS, cwd=work,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG)
        if r.returncode != 0:
            print(r.stderr.decode(errors="replace"))
            check(False, "the one-machine gpt2in shard runs")
            return 1
        ref = outputs(os.path.join(work, "ref"))
        check(len([n for n in ref if n.endswith(".bin")]) >= 4, f"the reference has several shards ({len(ref) - 1})")

        # 1. two worker processes, units of several inputs and of one
        sched = ["--scheduler-file", sfile]
        text = finish(driver(work, real, "d1", sched + ["--unit-bytes", "3k", "--keep-units"]),
                      "dask worker --nworkers 2")
        same_as_ref(os.path.join(work, "d1"), ref, "dask worker --nworkers 2")
        sizes = []
        units = os.path.join(work, "d1", f"{NAME}_units")
        for n in sorted(os.listdir(units)):
            if n.endswith(".tok.json"):
                with open(os.path.join(units, n)) as f:
                    sizes.append(len(json.load(f)["inputs"]))
        check(sum(sizes) == len(INPUTS) and max(sizes) > 1 and min(sizes) == 1,
              f"units of one and of several inputs ({sizes})")
        print(text.strip())

        # 2. a worker process dies in the middle of a unit: its stage is
        # running (and is left to finish on its own) when the worker is killed
        # Unit 8's sidecar is removed once after its stage ends, as a
        # stage of a killed driver's task, writing the same unit, would.
        fault = os.path.join(work, "killed")
        raced = os.path.join(work, "raced")
        prog = wrapper(os.path.join(work, "kill-worker"), f"""
case "$*" in
*--unit*/000005.tok*)
    if mkdir "{fault}" 2>/dev/null; then
        echo $PPID >"{fault}/pid"
        "{real}" "$@" &
        kill -9 $PPID
        wait
        exit 1
    fi;;
*--unit*/000008.tok*)
    if mkdir "{raced}" 2>/dev/null; then
        "{real}" "$@" || exit
        for a; do case "$a" in *.tok) rm "$a.json";; esac; done
        exit 0
    fi;;
esac
exec "{real}" "$@"
""")
        text = finish(driver(work, prog, "d2", sched + ["--unit-bytes", "1"]), "a worker killed")
        check(os.path.isfile(os.path.join(fault, "pid")), "a worker was killed in the middle of unit 5")
        check(os.path.isdir(raced), "unit 8 lost its sidecar once, and was redone")
        try:
            with open(os.path.join(fault, "pid")) as f:
                os.kill(int(f.read()), 0)
            check(False, "the killed worker is gone")
        except (OSError, ValueError):
            pass
        same_as_ref(os.path.join(work, "d2"), ref, "a worker killed")
        check(not os.path.exists(os.path.join(work, "d2", f"{NAME}_units")), "the units are removed at the end")

        # 2b. Ctrl-C (SIGINT to the driver) while its LocalCluster starts: the
        # one line and 130, not Dask's exit hook failing on the half-started
        # cluster with a traceback (tester9 T6)
        p = driver(work, real, "dint", ["--local", "2", "--quiet"])
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=HANG)
        text = out.decode(errors="replace")
        if p.returncode == 130:
            check(text.startswith("gpt2in-dask-shard: interrupted; rerun the same command to resume"),
                  f"Ctrl-C: its line first ({text[:200]!r})")
            check("Exception ignored in atexit" not in text, f"Ctrl-C: no traceback at exit ({text[:300]!r})")
        else:
            check(p.returncode == 0, f"Ctrl-C: exit {p.returncode}, want 130 ({text[:300]!r})")
            print("note: the driver ended before the Ctrl-C", flush=True)

        # 3. a LocalCluster driver (scheduler and workers in its process group)
        # killed while units 2 and later hang; the rerun, on the other cluster,
        # reuses units 0 and 1 and redoes a damaged one
        log = os.path.join(work, "units.log")
        go = os.path.join(work, "go")
        prog = wrapper(os.path.join(work, "hang"), f"""
unit="" prev=""
for a; do [ "$prev" = --unit ] && unit=${{a##*/}}; prev=$a; done
[ -n "$unit" ] && echo "$unit" >>"{log}"
case "$unit" in 00000[01].tok|"") ;; *)
    : >"{work}/hung.$unit"
    while [ ! -e "{go}" ]; do sleep 0.05; done;;
esac
exec "{real}" "$@"
""")
        units = os.path.join(work, "d3", f"{NAME}_units")
        p = driver(work, prog, "d3", ["--local", "2", "--unit-bytes", "1"])
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline and p.poll() is None:
            hung = [n for n in os.listdir(work) if n.startswith("hung.")]
            if (len(hung) >= 2 and os.path.exists(os.path.join(units, "000000.tok.json"))
                    and os.path.exists(os.path.join(units, "000001.tok.json"))):
                break
            time.sleep(0.05)
        check(p.poll() is None, "the driver is still running when it is killed")
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        check(not os.path.exists(os.path.join(work, "d3", f"{NAME}_manifest.json")),
              "no manifest before the rerun")
        # the same size, other tokens: only the sidecar's sha256 can tell
        with open(os.path.join(units, "000001.tok"), "r+b") as f:
            b = f.read(2)
            f.seek(0)
            f.write(bytes([b[0] ^ 1, b[1]]))
        os.unlink(log)
        open(go, "w").close()
        text = finish(driver(work, prog, "d3", sched + ["--unit-bytes", "1"]), "the rerun")
        with open(log) as f:
            redone = sorted(set(f.read().split()))
        want = [f"{i:06d}.tok" for i in range(1, len(INPUTS))]
        check(redone == want, f"the rerun redoes units 1 (damaged) to {len(INPUTS) - 1}, reuses 0 ({redone})")
        check("(1 reused)" in text, "the driver says it reused one unit")
        same_as_ref(os.path.join(work, "d3"), ref, "the rerun")

        # 4. bad input: the stage's message and a failure, no manifest
        with open(os.path.join(work, "bad.jsonl"), "w") as f:
            f.write('{"text": "fine"}\n{"text": 5}\n')
        r = subprocess.run([PY, DRIVER, "--gpt2in", real, "--out", "d4"] + sched + ["bad.jsonl"],
                           cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=HANG)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2 and "bad.jsonl:2:" in err, f"bad input: exit 2 and gpt2in's message ({err.strip()!r})")
        check(not os.path.exists(os.path.join(work, "d4", "corpus_manifest.json")), "bad input: no manifest")

        # 5. the scheduler of the running cluster dies under a driver: it
        # says so and how to resume (after a 2 s reconnection timeout)
        prog = wrapper(os.path.join(work, "hang5"), f"""
: >"{work}/hung5.$$"
while :; do sleep 0.05; done
""")
        p = driver(work, prog, "d5", sched + ["--unit-bytes", "1"],
                   env=dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s"))
        deadline = time.monotonic() + HANG
        while (time.monotonic() < deadline and p.poll() is None
               and not any(n.startswith("hung5.") for n in os.listdir(work))):
            time.sleep(0.05)
        os.killpg(cluster[0].pid, signal.SIGKILL)
        try:
            text = p.communicate(timeout=HANG)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            text = p.communicate()[0].decode(errors="replace")
        check(p.returncode == 2 and "rerun the same command to resume" in text and "Traceback" not in text,
              f"the scheduler killed: exit 2 and a hint to rerun ({text.strip()!r})")
    finally:
        stop_cluster(cluster)
        if failures and os.path.exists(os.path.join(work, "cluster.log")):
            with open(os.path.join(work, "cluster.log"), "rb") as f:
                print("cluster.log (end):\n" + f.read()[-3000:].decode(errors="replace"))
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
