#!/usr/bin/python3
"""gpt2in shard on a Dask cluster: the same shards and manifest as one machine.

    python3 tools/gpt2in_dask_shard.py (--local N | --scheduler ADDR | --scheduler-file FILE)
        --out DIR [--unit-bytes N] [--gpt2in PATH] [gpt2in shard options] INPUT...

The inputs, in the order given, are cut into work units of whole files (about
--unit-bytes each, at most NAME_BUDGET bytes of file names). Every unit is one Dask task: a worker runs
`gpt2in shard --unit DIR/NAME_units/NNNNNN.tok INPUTS...` (NNNNNN: the index of
the unit's first input), which writes the unit's tokens and, renamed last, its
sidecar. When every unit is there, one task runs `gpt2in shard --assemble`
over the units in input order: it cuts the shards and writes the manifest,
byte for byte what `gpt2in shard --out DIR ... INPUT...` writes on one machine
(the shards depend only on the token stream, whatever the grouping).

Needs: Python 3 with dask.distributed on the driver and on every worker, the
`gpt2in` program on every worker (--gpt2in), and one file system that every
host mounts at the same path: the stages run in the driver's working
directory, so input names are recorded in the manifest as given here.

Faults: a unit is written under a temporary name and renamed, so a task that
dies leaves nothing half-written under a final name; when a worker dies, Dask
runs its tasks again elsewhere (the stage's process dies with it). A
rerun with the same arguments (after the driver, the scheduler or the whole
cluster died) reuses every unit whose sidecar matches its inputs (names,
sizes, mtimes), the options, and the sha256 of the unit's tokens; assemble
keeps the shards the manifest records as complete.

Standalone on purpose: it imports nothing of the gpt2in Python package (whose
__init__ loads the C extension), and its task functions, defined in
__main__, travel to the workers by value, so workers need no copy of it.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

PROG = "gpt2in-dask-shard"
MAX_MESSAGE_LINES = 20
NAME_BUDGET = 256 << 10  # bytes of input names a unit's command line may hold


# ---- on the workers -------------------------------------------------------

def _die_with_parent():
    """A preexec_fn that makes the stage get SIGKILL when the worker thread
    waiting for it dies, so a killed worker leaves no orphan using a core;
    None where there is no prctl (Linux only). The function is looked up
    here, in the worker: the worker has other threads, so the forked child
    must only make the call, not load or look up anything."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sig = int(signal.SIGKILL)
    return lambda: prctl(1, sig)  # PR_SET_PDEATHSIG


def _run_stage(argv, cwd):
    """Runs one gpt2in stage; returns (its stderr, its CPU seconds), raises
    RuntimeError on failure."""
    import tempfile
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    preexec_fn=_die_with_parent())
        except OSError as e:
            raise RuntimeError(f"{PROG}: on {socket.gethostname()}: cannot run {argv[0]} in {cwd}: "
                               f"{e.strerror} (every worker needs the gpt2in program and the "
                               "driver's directory on a shared file system)") from None
        # wait4: this child's own CPU time (the worker's other threads have
        # children too)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read(1 << 20).decode("utf-8", "replace")
    if code != 0:
        why = f"exit status {code}" if code > 0 else f"signal {-code}"
        raise RuntimeError("\n".join(filter(None, [_trim(text), f"{PROG}: {argv[0]} failed on "
                                                     f"{socket.gethostname()} ({why})"])))
    return text, usage.ru_utime + usage.ru_stime


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def _unit_check(spec):
    """The unit's sidecar if the unit is complete and up to date, else None."""
    unit = spec["unit"]
    try:
        with open(unit + ".json", "rb") as f:
            side = json.load(f)
        if (side.get("format") != "gpt2in-unit" or side.get("version") != 1
                or side.get("options") != spec["options"]):
            return None
        ins = side.get("inputs")
        if [i.get("path") for i in ins] != spec["inputs"]:
            return None
        for i in ins:
            st = os.stat(os.path.join(spec["cwd"], i["path"]))
            if st.st_size != i.get("size") or st.st_mtime_ns != i.get("mtime_ns"):
                return None
        if os.stat(unit).st_size != 2 * side["tokens"]:
            return None
        if _sha256_file(unit) != side.get("tokens_sha256"):
            return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return side


def _trim(text):
    lines = [ln for ln in text.split("\n") if ln]
    if len(lines) > MAX_MESSAGE_LINES:
        lines = lines[:MAX_MESSAGE_LINES] + [f"... {len(lines) - MAX_MESSAGE_LINES} more lines"]
    return "\n".join(lines)


def unit_task(spec):
    """One work unit: reuse it if it checks, else tokenize it."""
    t0 = time.monotonic()
    side = _unit_check(spec)
    reused = side is not None
    messages, cpu = "", 0.0
    if not reused:
        # a stale or damaged unit must not pass the stage's own up-to-date
        # check (which does not hash the tokens)
        try:
            os.unlink(spec["unit"] + ".json")
        except FileNotFoundError:
            pass
        # A task of a killed driver may still write the same unit (the stage
        # removes the sidecar first): the same bytes, so just try again.
        for _ in range(3):
            text, used = _run_stage(spec["argv"], spec["cwd"])
            cpu += used
            messages = _trim(text)
            side = _unit_check(spec)
            if side is not None:
                break
        else:
            raise RuntimeError(f"{PROG}: {spec['unit']}: written by {spec['argv'][0]} on "
                               f"{socket.gethostname()} but its sidecar does not check (did an "
                               "input change meanwhile?)")
    return {"index": spec["index"], "reused": reused, "bytes": spec["bytes"],
            "tokens": side["tokens"], "documents": side["documents"],
            "skipped": side["skipped"], "seconds": time.monotonic() - t0, "cpu": cpu,
            "host": socket.gethostname(), "messages": messages}


def assemble_task(argv, cwd):
    t0 = time.monotonic()
    text, cpu = _run_stage(argv, cwd)
    return _trim(text), time.monotonic() - t0


# ---- on the driver --------------------------------------------------------

def partition(sizes, unit_bytes, name_lens=None, name_budget=NAME_BUDGET):
    """[first, end) ranges of consecutive inputs, each closed once it holds
    unit_bytes, or names of name_budget bytes (a stage's argument list must
    stay under the system's limit, 2 MB on Linux, whatever the file sizes)."""
    name_lens = name_lens or [0] * len(sizes)
    units, first, acc, names = [], 0, 0, 0
    for i, n in enumerate(sizes):
        if i > first and names + name_lens[i] + 1 > name_budget:
            units.append((first, i))
            first, acc, names = i, 0, 0
        acc += n
        names += name_lens[i] + 1
        if acc >= unit_bytes:
            units.append((first, i + 1))
            first, acc, names = i + 1, 0, 0
    if first < len(sizes):
        units.append((first, len(sizes)))
    return units


def _size_arg(text):
    m = re.fullmatch(r"(\d+)([kKmMgGtT]?)i?[bB]?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256M)")
    n = int(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " ")
    if n <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return n


def _tokens_arg(text):
    try:
        n = int(text, 10)
    except ValueError:
        n = 0
    if not 1 <= n <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"must be 1..2147483647, not {text!r}")
    return n


def _name_arg(text):
    if not re.fullmatch(r"[A-Za-z0-9._-]+", text):
        raise argparse.ArgumentTypeError("letters, digits, '-', '_' and '.' only")
    return text


def _positive_arg(text):
    try:
        n = int(text, 10)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return n


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Writes llm.c token shards and their manifest with `gpt2in shard`'s stages "
                    "run on a Dask cluster; the output is byte-identical to `gpt2in shard` on "
                    "one machine.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=_positive_arg, metavar="N",
                       help="start a LocalCluster of N worker processes (one thread each)")
    where.add_argument("--scheduler", metavar="ADDR", help="a running scheduler, e.g. tcp://host:8786")
    where.add_argument("--scheduler-file", metavar="FILE", help="as written by `dask scheduler --scheduler-file`")
    p.add_argument("--out", required=True, metavar="DIR", help="the shards' directory (shared by all hosts)")
    p.add_argument("--gpt2in", default=None, metavar="PATH",
                   help="the gpt2in program on the workers (default: the gpt2in beside this "
                        "program, as make install puts it, else gpt2in from their PATH)")
    p.add_argument("--unit-bytes", type=_size_arg, default=128 << 20, metavar="N",
                   help="input bytes a work unit gathers (whole files; default 128M)")
    p.add_argument("--threads", type=_positive_arg, default=1, metavar="N",
                   help="threads of each unit's gpt2in (default 1: a Dask thread is a core)")
    p.add_argument("--quiet", action="store_true", help="no progress, no messages but errors")
    p.add_argument("--keep-units", action="store_true", help="keep DIR/NAME_units/ at the end")
    g = p.add_argument_group("gpt2in shard options (passed on)")
    g.add_argument("--format", choices=("auto", "text", "jsonl"), default="auto")
    g.add_argument("--field", default="text", metavar="F")
    g.add_argument("--split-lines", action="store_true")
    g.add_argument("--on-error", choices=("skip", "fail"), default="fail")
    g.add_argument("--name", type=_name_arg, default="corpus")
    g.add_argument("--shard-tokens", type=_tokens_arg, metavar="S")
    g.add_argument("--val-tokens", type=_tokens_arg, metavar="V")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    return p.parse_args(argv)


def _fmt_bytes(n):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def _fmt_secs(s):
    s = int(s)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _say(args, text):
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def _connect(args):
    from distributed import Client, LocalCluster
    if args.local:
        # (an interrupted start leaves multiprocessing's tracker a semaphore
        # to clean up, which it does, with a warning the user has no use for)
        os.environ.setdefault("PYTHONWARNINGS", "ignore:resource_tracker:UserWarning")
        cluster = LocalCluster(n_workers=args.local, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    if args.scheduler_file:
        return Client(scheduler_file=args.scheduler_file), None
    return Client(args.scheduler), None


def _beside():
    """The gpt2in installed beside this program (PREFIX/bin), if any: its own
    directory first, then (through a symbolic link) its target's."""
    for d in (os.path.dirname(os.path.abspath(__file__)),
              os.path.dirname(os.path.realpath(__file__))):
        g = os.path.join(d, "gpt2in")
        if os.path.isfile(g) and os.access(g, os.X_OK):
            return g
    return "gpt2in"


# a unit file as `gpt2in shard --unit` names them here, or its temporary
_UNIT_FILE = re.compile(r"(\.)?[0-9]{6,}\.tok(\.json)?(?(1)\.tmp\.[A-Za-z0-9]{6})\Z")


def _remove_units(units_dir):
    """The units folder's own files go (units, sidecars, their temporaries),
    then the folder if nothing else is in it: a run removes only what it
    wrote."""
    try:
        names = os.listdir(units_dir)
    except OSError:
        return
    for n in names:
        p = os.path.join(units_dir, n)
        try:
            if _UNIT_FILE.match(n) and os.path.isfile(p) and not os.path.islink(p):
                os.unlink(p)
        except OSError:
            pass
    try:
        os.rmdir(units_dir)
    except OSError:
        pass


def run(args):
    cwd = os.getcwd()
    if args.gpt2in is None:
        args.gpt2in = _beside()
    if os.sep in args.gpt2in:
        # assemble runs in the units folder
        args.gpt2in = os.path.abspath(args.gpt2in)
    sizes = []
    for path in args.inputs:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as e:
            print(f"{PROG}: {path}: {e.strerror}", file=sys.stderr)
            return 2
    out = os.path.abspath(args.out)
    units_dir = os.path.join(out, args.name + "_units")
    try:
        os.makedirs(units_dir, exist_ok=True)
    except OSError as e:
        print(f"{PROG}: {units_dir}: {e.strerror}", file=sys.stderr)
        return 2

    options = {"format": args.format, "field": args.field,
               "split_lines": args.split_lines, "on_error": args.on_error}
    in_opts = ["--format", args.format, "--field", args.field, "--on-error", args.on_error,
               "--threads", str(args.threads), "--quiet" if args.quiet else None]
    in_opts += ["--split-lines"] if args.split_lines else []
    in_opts = [o for o in in_opts if o is not None]
    specs = []
    name_lens = [len(os.fsencode(p)) for p in args.inputs]
    for first, end in partition(sizes, args.unit_bytes, name_lens):
        unit = os.path.join(units_dir, f"{first:06d}.tok")
        inputs = args.inputs[first:end]
        specs.append({"index": len(specs), "unit": unit, "inputs": inputs, "cwd": cwd,
                      "options": options, "bytes": sum(sizes[first:end]),
                      "argv": [args.gpt2in, "shard", "--unit", unit] + in_opts + ["--"] + inputs})
    total = sum(sizes)

    # the units are named from the working directory: a list of short names
    # stays far below the argument size limit even for 100,000 units
    asm = [args.gpt2in, "shard", "--assemble", "--out", out, "--name", args.name]
    asm += ["--shard-tokens", str(args.shard_tokens)] if args.shard_tokens else []
    asm += ["--val-tokens", str(args.val_tokens)] if args.val_tokens else []
    asm += ["--quiet"] if args.quiet else []
    asm += ["--"] + [os.path.basename(s["unit"]) for s in specs]

    # Dask's own INFO and WARNING lines (a worker lost and replaced, stale
    # worker folders purged) are not the user's business; errors come back
    # as the tasks' exceptions. The variable reaches a LocalCluster's workers.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    from distributed import as_completed
    # (after the import, which sets the levels from Dask's configuration)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "asyncio"):  # asyncio: a slow close's timeout
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        client, cluster = _connect(args)
    except (OSError, ValueError, TimeoutError) as e:
        print(f"{PROG}: cannot reach the Dask scheduler: {e}", file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    tty = sys.stderr.isatty() and not args.quiet
    try:
        futures = [client.submit(unit_task, s, key=f"gpt2in-unit-{args.name}-{s['index']:06d}-{run_id}",
                                 pure=False, priority=len(specs) - s["index"]) for s in specs]
        done = reused = done_bytes = tokens = 0
        # what this run tokenized (units not reused) and the stages' CPU time
        work_bytes = work_tokens = 0
        cpu = 0.0
        try:
            for fut, res in as_completed(futures, with_results=True):
                done += 1
                done_bytes += res["bytes"]
                tokens += res["tokens"]
                if res["reused"]:
                    reused += 1
                else:
                    work_bytes += res["bytes"]
                    work_tokens += res["tokens"]
                    cpu += res["cpu"]
                if res["messages"] and not args.quiet:
                    print(res["messages"], file=sys.stderr, flush=True)
                if tty:
                    secs = time.monotonic() - t0
                    rate = work_bytes / secs if secs > 0 else 0
                    left = total - done_bytes
                    eta = f", ETA {_fmt_secs(left / rate)}" if rate > 0 and left > 0 else ""
                    print(f"\r{PROG}: units {done}/{len(specs)} ({reused} reused), "
                          f"{_fmt_bytes(done_bytes)} of {_fmt_bytes(total)}, "
                          f"{rate / 1e6:.1f} MB/s{eta}   ", end="", file=sys.stderr, flush=True)
        except Exception as e:
            if tty:
                print(file=sys.stderr)
            print(_explain(e, client), file=sys.stderr)
            try:
                client.cancel(futures)
            except Exception:
                pass  # the scheduler is gone: nothing to cancel
            return 2
        if tty:
            print(file=sys.stderr)
        try:
            messages, asm_secs = client.submit(assemble_task, asm, units_dir, pure=False,
                                               key=f"gpt2in-assemble-{args.name}-{run_id}").result()
        except Exception as e:
            print(_explain(e, client), file=sys.stderr)
            return 2
        if messages and not args.quiet:
            print(messages, file=sys.stderr)
    finally:
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        except Exception:
            pass  # a lost scheduler was reported above
    if not args.keep_units:
        _remove_units(units_dir)
    secs = time.monotonic() - t0
    # per core: what sizes a cluster for a corpus (see the README)
    rate = (f"; tokenizing {_fmt_bytes(work_bytes)} took {cpu:.1f} CPU s: "
            f"{work_bytes / cpu / 1e6:.1f} MB/s, {work_tokens / cpu / 1e6:.2f} M tokens/s a core"
            if cpu > 0 else "")
    _say(args, f"{PROG}: {len(specs)} units ({reused} reused), {_fmt_bytes(total)}, "
               f"{tokens} tokens in {secs:.1f} s{rate}; assemble {asm_secs:.1f} s "
               f"({_fmt_bytes(2 * tokens / max(asm_secs, 1e-9))}/s of shards)")
    return 0


def _explain(e, client):
    if client.status != "running":
        return (f"{PROG}: lost the Dask scheduler; the units written so far are kept: "
                "rerun the same command to resume")
    name = type(e).__name__
    if name == "KilledWorker":
        return (f"{PROG}: {e}: the task's worker died again and again "
                "(distributed.scheduler.allowed-failures)")
    text = str(e)
    return text if text.startswith(("gpt2in", PROG)) or "\n" in text else f"{PROG}: {name}: {text}"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        try:
            import distributed  # noqa: F401
        except ImportError as e:
            print(f"{PROG}: this Python ({sys.executable}) cannot import dask.distributed ({e}): install "
                  f"it (Debian: apt install python3-distributed, for /usr/bin/python3; or pip install "
                  f"distributed) or run this program with a Python that has it", file=sys.stderr)
            return 2
        return run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        _close_clusters()
        return 130


def _close_clusters():
    """A LocalCluster interrupted while it starts fails Dask's own close at
    exit with a traceback: the clusters are closed here instead, their
    errors ignored, and Dask's exit hook goes."""
    try:
        import atexit
        from distributed.deploy.spec import SpecCluster, close_clusters
    except Exception:
        return
    for c in list(SpecCluster._instances):
        try:
            c.close(timeout=10)
        except BaseException:
            pass
    atexit.unregister(close_clusters)


if __name__ == "__main__":
    sys.exit(main())
