"""archcalc benchmarks: prints figures and PASS/MISS against each target. No asserts.

    python benchmarks/bench.py                 # everything
    python benchmarks/bench.py specs cli       # some sections: specs, check, cli, scale, graph
    python benchmarks/bench.py --quick         # fewer repeats, scale sizes up to 10,000
    python benchmarks/bench.py --profile scale # cProfile of the largest generated network

Targets (docs/performance.md records the figures and the machine):
  specs  load + analyze every bundled spec, min of N repeats of the whole set     < 50 ms
  check  `archcalc check` of the whole library in process (every member's expect:  < 1 s
         cases, each analysed at its own input; not the lecture catalogue)
  cli    `archcalc table vgg16` to a pipe, median wall time                       < 1.5 x the
         import floor `python -c "import click, rich, yaml"`; numpy never imported
  scale  generated 100,000-layer networks, parse + analyze                        < 2 s, and
         linear: per-layer time at the largest size <= 1.5 x that at the smallest
  graph  cost (graph -> report) of resnet152_tv's resolved graph                 <= 2 ms

Timing on a shared machine is noisy, so every figure is the min (in-process) or median
(subprocesses, interleaved with the floor so load affects both alike) of several repeats.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO  # where the archcalc under test lives: this checkout, or --package-dir
archcalc = collapse = to_dict = None  # imported by main(), after --package-dir is known


def _import_archcalc(source: Path) -> None:
    global archcalc, collapse, to_dict, SOURCE
    SOURCE = source
    sys.path.insert(0, str(source))
    import archcalc as module
    from archcalc.report import collapse as collapse_fn, to_dict as to_dict_fn

    archcalc, collapse, to_dict = module, collapse_fn, to_dict_fn
    if Path(module.__file__).resolve().parent.parent != source.resolve():
        raise SystemExit(f"imported archcalc from {module.__file__}, not from {source}")
    try:  # the scale section's 100,000-layer networks are far over the default limits (docs/limits.md)
        from archcalc.limits import LIMITS
    except ImportError:  # an archcalc from before the limits
        return
    LIMITS.update(file_bytes=10**8, yaml_nodes=10**7, graph_nodes=10**7)

SPECS_TARGET_S = 0.050
CLI_TARGET_RATIO = 1.5
SCALE_TARGET_S = 2.0
LINEAR_TARGET_RATIO = 1.5


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f} ms"


def best_of(fn, repeats: int) -> float:
    """Min CPU time of this process for fn() over repeats.

    CPU time, not wall time: on a shared machine wall time also counts the time spent waiting
    for a core, which says nothing about archcalc. The garbage collector stays on, as in real
    use (what archcalc does about it is part of what is measured); each repeat starts after a
    collection. The wall time of the same repeat is kept in LAST_WALL for the record."""
    global LAST_WALL
    times = []
    walls = []
    for _ in range(repeats):
        gc.collect()
        w0 = time.perf_counter()
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
        walls.append(time.perf_counter() - w0)
    LAST_WALL = min(walls)
    return min(times)


LAST_WALL = 0.0


# ---------------------------------------------------------------- 1. bundled specs


def bench_specs(repeats: int) -> bool:
    names = archcalc.bundled_names()
    print(f"\n== 1. load + analyze every bundled spec ({len(names)} specs; CPU time, min of {repeats} repeats)")
    per_spec = {}
    for name in names:
        per_spec[name] = best_of(lambda name=name: (archcalc.spec._PARSED.clear(), archcalc.analyze(archcalc.load(name))),
                                 repeats)

    def all_specs():
        # spec.parse keeps a family file's YAML for its other members; start each repeat cold, so
        # the figure is one read of every file, as `archcalc check` or `archcalc list` does
        archcalc.spec._PARSED.clear()
        for name in names:
            archcalc.analyze(archcalc.load(name))

    total = best_of(all_specs, repeats)
    wall = LAST_WALL
    rows = {name: len(archcalc.analyze(archcalc.load(name)).rows) for name in names}
    for name in sorted(names, key=per_spec.get, reverse=True)[:8]:
        print(f"   {name:28s} {ms(per_spec[name])}  {rows[name]:6d} rows")
    if len(names) > 8:
        print(f"   ... and {len(names) - 8} more")
    ok = total < SPECS_TARGET_S
    print(f"   all {len(names)} specs together: {ms(total)} CPU ({ms(wall).strip()} wall), {sum(rows.values())} rows, "
          f"{total / sum(rows.values()) * 1e6:.0f} us/row   target < {SPECS_TARGET_S * 1e3:.0f} ms: {verdict(ok)}")
    return ok


CHECK_TARGET_S = 1.0


def bench_check(repeats: int) -> bool:
    """What `archcalc check` does without SPECS, in process and without the catalogue: load every
    bundled spec (family files read cold, as in a fresh process) and run each of its expect: cases,
    the members of one file sharing a check_nodes budget."""
    from archcalc.check import check

    try:
        from archcalc.check import new_budget
    except ImportError:  # an archcalc from before the check_nodes budget
        new_budget = None
    names = archcalc.bundled_names()
    counts = {}

    def check_all():
        archcalc.spec._PARSED.clear()
        budgets: dict = {}
        total = failed = analyses = 0
        for name in names:
            spec = archcalc.load(name)
            if new_budget is None:
                outcomes = check(spec)
            else:
                outcomes = check(spec, budget=budgets.setdefault(spec.file, new_budget()))
            total += len(outcomes)
            failed += sum(1 for o in outcomes if not o.ok)
            expect = spec.expect
            analyses += max(1, len(expect)) if isinstance(expect, list) else 1
        counts.update(total=total, failed=failed, analyses=analyses)

    t = best_of(check_all, repeats)
    wall = LAST_WALL
    ok = t < CHECK_TARGET_S
    print(f"\n== 5. `archcalc check` of every bundled spec, in process ({len(names)} specs, {counts['analyses']} analyses; "
          f"CPU time, min of {repeats} repeats)")
    print(f"   {counts['total'] - counts['failed']} of {counts['total']} expected numbers reproduced: {ms(t)} CPU "
          f"({ms(wall).strip()} wall)   target < {CHECK_TARGET_S:.0f} s: {verdict(ok)}")
    return ok


GRAPH_SPEC = "resnet152_tv"
GRAPH_TARGET_S = 0.002


def bench_graph(repeats: int) -> bool:
    """Engine II resolves a spec into a graph once; costing that graph under a profile is what a
    `--batch`/`--dtype` sweep or `fit` repeats. Target: cost(resnet152_tv's graph) <= 2 ms."""
    spec = archcalc.load(GRAPH_SPEC)
    graph = archcalc.expand(spec)
    t_expand = best_of(lambda: archcalc.expand(spec), repeats)
    t_cost = best_of(lambda: archcalc.cost(graph), repeats)
    t_analyze = best_of(lambda: archcalc.analyze(spec), repeats)
    n = len(graph.nodes)
    ok = t_cost <= GRAPH_TARGET_S
    print(f"\n== 4. {GRAPH_SPEC}: {n} nodes (CPU time, min of {repeats} repeats)")
    print(f"   expand (spec -> graph)        {ms(t_expand)}  {t_expand / n * 1e6:5.1f} us/node")
    print(f"   cost (graph -> report)        {ms(t_cost)}  {t_cost / n * 1e6:5.1f} us/node   "
          f"target <= {GRAPH_TARGET_S * 1e3:.0f} ms: {verdict(ok)}")
    print(f"   analyze (expand + cost)       {ms(t_analyze)}  (information)")
    return ok


# ---------------------------------------------------------------- 2. CLI wall time


def _subprocess_env(cached: bool, clean_path: str | None = None) -> dict:
    """Environment for a timed subprocess.

    cached=True writes bytecode to (and reads it from) a private cache directory, as after a pip
    install; this checkout's environment may set PYTHONDONTWRITEBYTECODE, which recompiles
    archcalc's modules on every run (the installed dependencies ship .pyc files).
    clean_path: run with `python -S` on this PYTHONPATH (a copy of the package laid out as a
    wheel installs it, then site-packages), so no .pth start-up hooks preload modules."""
    env = dict(os.environ)
    if cached:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "archcalc-bench-pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    if clean_path:
        env["PYTHONPATH"] = clean_path
    elif SOURCE != REPO:  # PYTHONPATH comes before the editable install's finder
        env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def _clean_install(tmp: Path) -> str:
    """archcalc copied as a wheel lays it out (the specs inside the package), and the PYTHONPATH
    that finds it and the installed dependencies without site's .pth hooks."""
    import shutil
    import sysconfig

    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(SOURCE / "archcalc", tmp / "archcalc", ignore=ignore, dirs_exist_ok=True)
    if (SOURCE / "specs").is_dir():  # a checkout: the wheel puts specs/ inside the package
        shutil.copytree(SOURCE / "specs", tmp / "archcalc" / "specs", ignore=ignore)
    return os.pathsep.join([str(tmp), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])


_NEUTRAL: list[str] = []


def _neutral_cwd() -> str:
    """An empty directory of our own: the shared temp directory may hold a file named like a spec
    (a file `vgg16` there is read as the spec), and `python -m` puts the cwd first on sys.path."""
    if not _NEUTRAL:
        _NEUTRAL.append(tempfile.mkdtemp(prefix="archcalc-bench-cwd-"))
    return _NEUTRAL[0]


def _run(cmd: list[str], env: dict, cwd: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one run of cmd, output to a pipe. Run from a
    neutral cwd: `python -m` puts the cwd first on sys.path, which would find the checkout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd or _neutral_cwd())
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode(errors='replace')}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _import_self_times(cmd_args: list[str], env: dict, flags: list[str]) -> dict[str, int]:
    """module -> its own import time in microseconds (min of 3 runs of -X importtime)."""
    best: dict[str, int] = {}
    for _ in range(3):
        err = subprocess.run([sys.executable, *flags, "-X", "importtime", *cmd_args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=True, check=True,
                             cwd=_neutral_cwd()).stderr
        for line in err.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                own, _, name = line[len("import time:"):].split("|")
                best[name.strip()] = min(best.get(name.strip(), 10**9), int(own))
    return best


FLOOR_CODE = "import click, rich, yaml"
RICH_FLOOR_CODE = "import click, rich.console, rich.table, yaml"


def bench_cli(repeats: int) -> bool:
    py = sys.executable
    table_args = ["-m", "archcalc", "table", "vgg16"]
    ok = True
    print(f"\n== 2. CLI, output to a pipe (median of {repeats} runs, interleaved with the floor)")
    print(f"     {'':52s} {'wall':>11s} {'CPU':>11s}  ratio to floor (wall, CPU)")
    with tempfile.TemporaryDirectory() as tmp:
        clean = _clean_install(Path(tmp))
        setups = (
            ("bytecode cached (as installed)", _subprocess_env(True), []),
            ("PYTHONDONTWRITEBYTECODE=1 (archcalc recompiled each run)", _subprocess_env(False), []),
            ("clean interpreter: python -S, no .pth hooks, bytecode cached", _subprocess_env(True, clean), ["-S"]),
        )
        for label, env, flags in setups:
            cmds = {
                "floor": [py, *flags, "-c", FLOOR_CODE],
                "rich": [py, *flags, "-c", RICH_FLOOR_CODE],
                "table": [py, *flags, *table_args],
                "csv": [py, *flags, *table_args, "--format", "csv"],
            }
            for _ in range(3):  # warm the page cache and, when cached, write the bytecode
                for cmd in cmds.values():
                    _run(cmd, env)
            runs: dict[str, list] = {k: [] for k in cmds}
            for _ in range(repeats):
                for k, cmd in cmds.items():
                    runs[k].append(_run(cmd, env))
            med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs.items()}
            print(f"   {label}")
            names = {"floor": f"floor  python -c {FLOOR_CODE!r}", "rich": f"python -c {RICH_FLOOR_CODE!r}",
                     "table": "python -m archcalc table vgg16", "csv": "... --format csv (no rich)"}
            for k in cmds:
                ratio_wall, ratio_cpu = med[k][0] / med["floor"][0], med[k][1] / med["floor"][1]
                mark = ""
                if k == "table" and not flags and env.get("PYTHONPYCACHEPREFIX"):
                    ok = ratio_wall <= CLI_TARGET_RATIO
                    mark = f"   target <= {CLI_TARGET_RATIO}x (wall): {verdict(ok)}"
                print(f"     {names[k]:52s} {ms(med[k][0])} {ms(med[k][1])}  {ratio_wall:4.2f} {ratio_cpu:4.2f}{mark}")
        env, flags = setups[2][1], setups[2][2]
        mods = _import_self_times(table_args, env, flags)
        floor_mods = _import_self_times(["-c", FLOOR_CODE], env, flags)
    numpy_free = not any(m == "numpy" or m.startswith("numpy.") for m in mods)
    ok = ok and numpy_free
    print(f"   numpy imported by `table`: {'no' if numpy_free else 'YES'}: {verdict(numpy_free)}")
    extra = {m: us for m, us in mods.items() if m not in floor_mods}
    by_package: dict[str, int] = {}
    for m, us in extra.items():
        by_package[m.split(".")[0]] = by_package.get(m.split(".")[0], 0) + us
    top = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:8]
    print(f"   imports beyond the floor, clean interpreter (own import time by package, min of 3): "
          f"{sum(extra.values()) / 1e3:.1f} ms = " + ", ".join(f"{m} {us / 1e3:.1f}" for m, us in top))
    return ok


# ---------------------------------------------------------------- 3. generated networks


def chain_yaml(n_layers: int) -> str:
    """A plain chain conv/relu/bn of 1x1 kernels: one YAML item per layer."""
    lines = ["name: chain", "input: [8, 4, 4]", "layers:"]
    cycle = ("  - conv: {out: 8, k: 1}", "  - relu", "  - batchnorm")
    lines += [cycle[i % 3] for i in range(n_layers)]
    return "\n".join(lines) + "\n"


def distinct_chain_yaml(n_layers: int) -> str:
    """The same chain, but every conv has its own width, so no two layers cost the same and
    the engine's per-analysis cost memo never hits: the worst case for the rules."""
    lines = ["name: distinct", "input: [8, 4, 4]", "layers:"]
    for i in range(n_layers):
        lines.append(("  - conv: {out: %d, k: 1}" % (8 + i // 3), "  - relu", "  - batchnorm")[i % 3])
    return "\n".join(lines) + "\n"


RES_ROWS_PER_CALL = 6  # conv, batchnorm, relu, conv on main; the add; the relu after it
RES_TIMES = 10


def residual_yaml(n_layers: int) -> str:
    """Residual blocks with $args, times and an add (identity skip), called stage by stage:
    exercises block calls, branch scopes, merges and names several levels deep."""
    calls = max(1, n_layers // (RES_ROWS_PER_CALL * RES_TIMES))
    lines = [
        "name: residual", "input: [8, 4, 4]",
        "blocks:",
        "  res:",
        "    args: {c: ~}",
        "    body:",
        "      - add:",
        "          main:",
        "            - conv: {out: $c, k: 1}",
        "            - batchnorm",
        "            - relu",
        "            - conv: {out: $c * 1, k: 1}",
        "          skip: []",
        "      - relu",
        "layers:",
    ]
    lines += [f"  - res stage{i}: {{c: 8, times: {RES_TIMES}}}" for i in range(1, calls + 1)]
    return "\n".join(lines) + "\n"


def bench_scale(sizes: list[int], repeats: int, profile: bool) -> bool:
    print(f"\n== 3. generated networks (CPU time, min of {repeats} repeats, more at small sizes)")
    ok = True
    # The first and last are the target's networks; the distinct chain is a stress case beyond
    # them (every conv costed afresh: no help from the engine's per-analysis cost memo).
    variants = (("chain conv/relu/bn, all convs alike", chain_yaml, True),
                ("chain conv/relu/bn, every conv distinct (stress case, not a target)", distinct_chain_yaml, False),
                ("residual blocks x times", residual_yaml, True))
    for label, make, is_target in variants:
        print(f"   {label}")
        print(f"     {'layers':>8s} {'rows':>8s} {'yaml chars':>11s} {'parse':>11s} {'analyze':>11s} "
              f"{'total':>11s} {'us/row':>7s} {'(wall)':>11s} {'report ops*':>11s}")
        per_row = []
        total_at = {}
        for n in sizes:
            text = make(n)
            reps = max(repeats, min(20, 100_000 // n))
            spec = archcalc.parse(text)
            report = archcalc.analyze(spec)
            rows = len(report.rows)
            # spec.parse keeps the YAML of a text it has seen (a family file's members): time it cold
            t_parse = best_of(lambda: (archcalc.spec._PARSED.clear(), archcalc.parse(text)), reps)
            wall = LAST_WALL
            t_analyze = best_of(lambda: archcalc.analyze(spec), reps)
            wall += LAST_WALL
            last = report.rows[-1]

            def report_ops():
                collapse(report, 1)
                to_dict(report)
                report.find(last.path)

            t_ops = best_of(report_ops, reps)
            total = t_parse + t_analyze
            total_at[n] = total
            per_row.append(total / rows)
            print(f"     {n:8,d} {rows:8,d} {len(text):11,d} {ms(t_parse)} {ms(t_analyze)} {ms(total)} "
                  f"{total / rows * 1e6:7.2f} {ms(wall)} {ms(t_ops)}")
        ratio = per_row[-1] / per_row[0]
        linear = ratio <= LINEAR_TARGET_RATIO
        big = max(sizes)
        fast = total_at[big] < SCALE_TARGET_S if big >= 100_000 else None
        tag = "target" if is_target else "for reference"
        print(f"     per-row time {big:,} vs {sizes[0]:,} layers: ratio {ratio:.2f}   "
              f"{tag} <= {LINEAR_TARGET_RATIO}: {verdict(linear)}")
        if fast is None:
            print(f"     (largest size {big:,} < 100,000: the 2 s target is not checked)")
        else:
            print(f"     {big:,} layers parse + analyze {total_at[big]:.2f} s CPU   {tag} < {SCALE_TARGET_S:.0f} s: "
                  f"{verdict(fast)}")
        if is_target:
            ok = ok and linear and fast is not False
    if profile:
        for _, make, _ in variants:
            text = make(max(sizes))
            prof = cProfile.Profile()
            prof.enable()
            archcalc.analyze(archcalc.parse(text))
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
            print(f"   profile: parse + analyze {make.__name__}({max(sizes)})")
            print(buf.getvalue())
    print("   * report ops: collapse(report, 1) + to_dict(report) + report.find(last row) (not in the targets)")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sections", nargs="*", metavar="{specs,check,cli,scale,graph}", help="default: all five")
    ap.add_argument("--quick", action="store_true", help="fewer repeats; scale sizes up to 10,000")
    ap.add_argument("--repeats", type=int, help="repeats per figure (default 20, --quick 5)")
    ap.add_argument("--sizes", help="comma-separated layer counts for section 3")
    ap.add_argument("--profile", action="store_true", help="cProfile the largest generated network")
    ap.add_argument("--package-dir", type=Path, default=REPO,
                    help="benchmark the archcalc package in this folder instead (to compare two versions)")
    args = ap.parse_args(argv)
    bad = [s for s in args.sections if s not in ("specs", "check", "cli", "scale", "graph")]
    if bad:
        ap.error(f"unknown section {bad[0]!r}; sections: specs, check, cli, scale, graph")
    _import_archcalc(args.package_dir)
    sections = args.sections or ["specs", "check", "cli", "scale", "graph"]
    repeats = args.repeats or (5 if args.quick else 20)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])

    from yaml import __with_libyaml__

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"archcalc {archcalc.__version__} benchmarks: Python {platform.python_version()} "
          f"({platform.python_implementation()}), PyYAML libyaml={'yes' if __with_libyaml__ else 'no'}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}, load average {load:.2f}")
    print(f"archcalc under test: {Path(archcalc.__file__).parent}")
    results = {}
    if "specs" in sections:
        results["specs"] = bench_specs(repeats)
    if "check" in sections:
        results["check"] = bench_check(max(3, repeats // 4))
    if "cli" in sections:
        results["cli"] = bench_cli(max(repeats, 11))
    if "scale" in sections:
        results["scale"] = bench_scale(sizes, max(1, repeats // 4), args.profile)
    if "graph" in sections:
        results["graph"] = bench_graph(repeats)
    print("\nsummary: " + ", ".join(f"{k} {verdict(v)}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
