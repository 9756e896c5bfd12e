"""Read-path benchmark: lakeml next to MLflow on the same data, and lakeml at scale.

Side by side (default): 2,000 runs x 20 params x 10 metrics x 100 steps, logged
into lakeml (``Lake.log_batch``) and into MLflow (SQLite store, ``log_batch``).
Run it with the interpreter that has both installed::

    /work/main/.venv-bench/bin/python benchmarks/bench_query.py

At scale (lakeml only; writes ~100M metric points as large Arrow appends, which
takes a while the first time; the data folder is reused afterwards)::

    python benchmarks/bench_query.py --scale [--runs 100000 --points 1000]

The same queries on pyiceberg's SQL catalog in PostgreSQL (a team's set-up) beside SQLite
(lakeml only; starts a throw-away PostgreSQL like the tests do, tests/servers.py, and registers
the very same tables in it, so both catalogs read identical files)::

    python benchmarks/bench_query.py --postgres [--runs 2000]

Every timing is the median of several repetitions after one warm-up call in the
same process; "first query" is the first call of a fresh client (it includes opening the
catalog, loading the DuckDB extensions and building the in-memory copies). The metric
summary a client builds is stored on local disk (LAKEML_CACHE_DIR; the scale run uses a
fresh one), so the first client pays for it and later ones start from it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.datagen import EXPERIMENT, Shape, load_lakeml, load_mlflow, scale_tables  # noqa: E402

FILTER = "params.p1 = 'v1' AND metrics.m0 > 0.8"
BEST_SQL = """SELECT p.value AS p1, max(m.value) AS best_m0
              FROM lakeml.metric_latest m JOIN lakeml.params_latest p USING (run_id)
              WHERE m.key = 'm0' AND p.key = 'p1' GROUP BY 1 ORDER BY 1"""
TARGETS_MS = {"search": 30, "history100": 100, "best_per_p1": 50}


def timed(fn, reps: int = 7) -> tuple[float, object]:
    """(median ms over ``reps`` calls after a warm-up, last result)."""
    out = fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def once(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def prepare(root: Path, marker: Path, what: str, loaders: dict) -> None:
    """Write the data set into ``root`` once (``marker`` says it is complete); later runs reuse it."""
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(what)
    for name, load in loaders.items():
        t = time.time()
        load()
        print(f"  {name} loaded in {time.time() - t:.1f}s")
    marker.touch()


# -- side by side -------------------------------------------------------------------------------
def side_by_side(args) -> None:
    import lakeml

    root = Path(args.data or Path(tempfile.gettempdir()) / "lakeml-bench-query")
    shape = Shape(runs=args.runs)

    def into_lakeml() -> None:
        with lakeml.connect(warehouse=root / "lakeml", commit_interval=1.0) as lake:
            load_lakeml(lake, shape)

    loaders = {"lakeml": into_lakeml}
    if _has_mlflow():
        loaders["mlflow"] = lambda: load_mlflow(_mlflow_client(root), shape)
    prepare(root, root / f"ready-{shape.runs}",
            f"loading {shape.runs:,} runs x {shape.params} params x {shape.metrics} metrics x {shape.steps} steps",
            loaders)

    lake = lakeml.connect(warehouse=root / "lakeml")
    cold, _ = once(lambda: lake.search_runs(EXPERIMENT, FILTER))
    ms, df = timed(lambda: lake.search_runs(EXPERIMENT, FILTER))
    ids = lake.sql(f"SELECT run_id FROM lakeml.runs_latest WHERE run_name IN "
                   f"({', '.join(repr(f'run-{i}') for i in range(0, shape.runs, max(1, shape.runs // 100)))})"
                   )["run_id"].to_list()[:100]
    h_first, _ = once(lambda: [lake.get_metric_history(r, "m0") for r in ids])  # loads the point cache
    h_loop, hist = timed(lambda: [lake.get_metric_history(r, "m0") for r in ids], reps=3)
    h_batch, hb = timed(lambda: lake.metric_histories(ids, "m0"))
    b_ms, best = timed(lambda: lake.sql(BEST_SQL))
    lk = {"search": (ms, df.height), "history_loop": (h_loop, sum(h.height for h in hist)),
          "history_batch": (h_batch, hb.height), "best": (b_ms, best)}
    print(f"\nlakeml cold first search (fresh client, includes engine start): {cold:.0f} ms")
    print(f"lakeml first 100 history calls of the client (reads the files into the point cache): {h_first:.0f} ms")

    ml = {}
    if _has_mlflow():
        client = _mlflow_client(root)
        eid = client.get_experiment_by_name(EXPERIMENT).experiment_id
        ms_ml, runs = timed(lambda: client.search_runs([eid], FILTER, max_results=5000), reps=3)
        name_to_id = {}
        page = client.search_runs([eid], "", max_results=5000)
        for r in page:
            name_to_id[r.info.run_name] = r.info.run_id
        names = [f"run-{i}" for i in range(0, shape.runs, max(1, shape.runs // 100))][:100]
        ml_ids = [name_to_id[n] for n in names]
        h_ml, hist_ml = timed(lambda: [client.get_metric_history(r, "m0") for r in ml_ids], reps=3)
        b_ml, best_ml = timed(lambda: _mlflow_best(eid), reps=3)
        ml = {"search": (ms_ml, len(runs)), "history": (h_ml, sum(len(h) for h in hist_ml)), "best": (b_ml, best_ml)}

    def ratio(a, b):
        return f"{b / a:6.1f}x" if a and b else "   n/a"

    print(f"\n{'query':<44}{'lakeml':>10}{'mlflow':>10}{'speed-up':>10}{'target':>9}")
    print("-" * 83)
    rows = [("filtered run search", lk["search"][0], ml.get("search", (None,))[0], TARGETS_MS["search"]),
            ("metric history of 100 runs (100 calls)", lk["history_loop"][0], ml.get("history", (None,))[0],
             TARGETS_MS["history100"]),
            ("metric history of 100 runs (1 batched call)", lk["history_batch"][0],
             ml.get("history", (None,))[0], TARGETS_MS["history100"]),
            ("best final m0 per value of p1", lk["best"][0], ml.get("best", (None,))[0],
             TARGETS_MS["best_per_p1"])]
    for name, a, b, target in rows:
        ok = "ok" if a <= target else "MISSED"
        print(f"{name:<44}{a:>8.1f}ms{(f'{b:8.0f}ms' if b else '       -  '):>10}{ratio(a, b):>10}"
              f"{f'<={target}ms':>9} {ok}")
    print(f"\nsanity: search rows lakeml={lk['search'][1]}" + (f" mlflow={ml['search'][1]}" if ml else "")
          + f"; history points lakeml={lk['history_loop'][1]}/{lk['history_batch'][1]}"
          + (f" mlflow={ml['history'][1]}" if ml else ""))
    if ml:
        a = {r["p1"]: round(r["best_m0"], 9) for r in lk["best"][1].iter_rows(named=True)}
        b = {k: round(v, 9) for k, v in ml["best"][1].items()}
        print(f"sanity: best-per-p1 results equal: {a == b}")
    lake.close()


def _has_mlflow() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("(mlflow is not installed in this interpreter: lakeml numbers only; use .venv-bench/bin/python)")
        return False
    return True


def _mlflow_client(root: Path):
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # for mlflow.search_runs (the pandas path)
    return MlflowClient(tracking_uri=uri)


def _mlflow_best(eid: str) -> dict:
    import mlflow

    df = mlflow.search_runs(experiment_ids=[eid], max_results=50_000)
    return df.groupby("params.p1")["metrics.m0"].max().to_dict()


# -- PostgreSQL beside SQLite -------------------------------------------------------------------
def catalogs(args) -> None:
    """Search and metric history with the catalog in SQLite (embedded) and in PostgreSQL."""
    import lakeml
    from tests.servers import PostgresServer

    root = Path(args.data or Path(tempfile.gettempdir()) / "lakeml-bench-query")
    shape = Shape(runs=args.runs)
    wh = root / "lakeml"
    if not (root / f"ready-{shape.runs}").exists() and not (root / f"ready-lakeml-{shape.runs}").exists():
        def into_lakeml() -> None:
            with lakeml.connect(warehouse=wh, commit_interval=1.0) as lake:
                load_lakeml(lake, shape)

        prepare(root, root / f"ready-lakeml-{shape.runs}", f"loading {shape.runs:,} runs x {shape.params} params x "
                f"{shape.metrics} metrics x {shape.steps} steps", {"lakeml": into_lakeml})

    t0 = time.perf_counter()
    with PostgresServer() as pg:
        started = time.perf_counter() - t0
        uri = pg.create_database("bench")
        with lakeml.connect(warehouse=wh) as lite:  # register the SQLite catalog's tables in PostgreSQL
            from pyiceberg.catalog.sql import SqlCatalog

            src = lite.store.catalog
            dst = SqlCatalog(lite.config.catalog_name, uri=uri, warehouse=wh.as_uri())
            for ns in src.list_namespaces():
                dst.create_namespace(ns)
                for ident in src.list_tables(ns):
                    dst.register_table(ident, src.load_table(ident).metadata_location)
            lite.search_runs(EXPERIMENT, FILTER)  # imports and DuckDB extensions: no client below pays them
        print(f"PostgreSQL {pg.psql('SHOW server_version').strip()} started in {started:.1f}s; "
              f"the same {shape.runs:,}-run tables registered in it")
        results = {}
        for name, kwargs in (("sqlite", {"warehouse": wh}),
                             ("postgres", {"type": "sql", "uri": uri, "warehouse": wh.as_uri()})):
            cache = os.environ["LAKEML_CACHE_DIR"] = tempfile.mkdtemp(prefix="lakeml-bench-cache-")  # same start
            try:
                results[name] = _read_path(lakeml.connect(**kwargs), shape)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    print(f"\n{'query (median ms)':<52}{'sqlite':>10}{'postgres':>10}{'pg/sqlite':>11}")
    print("-" * 83)
    for key, label in (("cold", "first search of a fresh client (engine start)"),
                       ("search", "filtered run search"),
                       ("history_loop", "metric history of 100 runs (100 calls)"),
                       ("history_batch", "metric history of 100 runs (1 batched call)"),
                       ("best", "best final m0 per value of p1 (SQL)")):
        a, b = results["sqlite"][key][0], results["postgres"][key][0]
        print(f"{label:<52}{a:>8.1f}ms{b:>8.1f}ms{b / a:>10.2f}x")
    same = all(results["sqlite"][k][1] == results["postgres"][k][1] for k in ("search", "history_batch", "best"))
    print(f"\nsanity: identical answers on both catalogs: {same}")


def _read_path(lake, shape: Shape) -> dict:
    """(ms, answer) per read query on ``lake``; closes it."""
    try:
        out = {"cold": once(lambda: lake.search_runs(EXPERIMENT, FILTER))}
        ms, df = timed(lambda: lake.search_runs(EXPERIMENT, FILTER))
        out["search"] = (ms, df.height)
        names = ", ".join(repr(f"run-{i}") for i in range(0, shape.runs, max(1, shape.runs // 100)))
        ids = lake.sql(f"SELECT run_id FROM lakeml.runs_latest WHERE run_name IN ({names})")["run_id"].to_list()[:100]
        lake.get_metric_history(ids[0], "m0")
        ms, hist = timed(lambda: [lake.get_metric_history(r, "m0") for r in ids], reps=3)
        out["history_loop"] = (ms, sum(h.height for h in hist))
        ms, hb = timed(lambda: lake.metric_histories(ids, "m0"))
        out["history_batch"] = (ms, hb.height)
        ms, best = timed(lambda: lake.sql(BEST_SQL))
        out["best"] = (ms, sorted((r["p1"], round(r["best_m0"], 9)) for r in best.iter_rows(named=True)))
        out["cold"] = (out["cold"][0], None)
        return out
    finally:
        lake.close()


# -- scale ----------------------------------------------------------------------------------------
def scale(args) -> None:
    import lakeml

    root = Path(args.data or Path(tempfile.gettempdir()) / "lakeml-bench-scale")
    n_runs, points = args.runs or 100_000, args.points
    def write() -> None:
        with lakeml.connect(warehouse=root) as lake:
            lake.init()
            scale_tables(lake, n_runs, points)

    prepare(root, root / f"ready-{n_runs}-{points}",
            f"writing {n_runs:,} runs and {n_runs * points:,} metric points into {root}", {"lakeml": write})
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 1e9
    print(f"data: {n_runs:,} runs, {n_runs * points:,} metric points, {size:.2f} GB of Parquet")

    board = ("SELECT experiment, run_name, value FROM lakeml.leaderboard WHERE experiment = 'exp-3' "
             "AND metric = 'm0' ORDER BY rank_desc LIMIT 10")
    with lakeml.connect(warehouse=root) as probe:
        run_id = probe.sql("SELECT run_id FROM lakeml.runs_latest WHERE run_name = 'run-4242'")["run_id"][0]
    fresh = lakeml.connect(warehouse=root)
    cold_hist, _ = once(lambda: fresh.get_metric_history(run_id))
    fresh.close()
    os.environ["LAKEML_CACHE_DIR"] = tempfile.mkdtemp(prefix="lakeml-bench-cache-")  # no stored summary yet
    builder = lakeml.connect(warehouse=root)
    cold_board, _ = once(lambda: builder.sql(board))  # builds the metric summary and stores it
    builder.close()
    lake = lakeml.connect(warehouse=root)
    restored_board, _ = once(lambda: lake.sql(board))  # starts from the stored summary
    warm_board, top = timed(lambda: lake.sql(board))
    warm_hist, hist = timed(lambda: lake.get_metric_history(run_id))
    search, found = timed(lambda: lake.search_runs("exp-3", "params.p1 = 'v3' AND metrics.m0 > 0.9",
                                                   max_results=100))
    from lakeml.query.engine import DuckEngine

    eng = DuckEngine(lake.store, cached=False)
    eng.refresh()
    plain_board, _ = once(lambda: eng.query(board))
    eng.close()
    lake.close()
    print(f"\n{'query':<58}{'time':>10}{'target':>10}")
    print("-" * 78)
    for name, ms, target in [
        ("leaderboard, warm client (top 10 of one experiment)", warm_board, 1000),
        ("leaderboard, first query of the first client (builds summary)", cold_board, None),
        ("leaderboard, first query of a later client (stored summary)", restored_board, None),
        ("leaderboard, plain SQL, no summary (as a BI file runs it)", plain_board, None),
        (f"one run's full history, warm ({hist.height:,} points)", warm_hist, 100),
        ("one run's full history, first query of a new client", cold_hist, None),
        (f"filtered search in one experiment ({found.height} runs)", search, None),
    ]:
        t = f"<={target}ms" if target else ""
        ok = ("ok" if ms <= target else "MISSED") if target else ""
        print(f"{name:<58}{ms:>8.0f}ms{t:>10} {ok}")
    print(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", action="store_true", help="lakeml alone at 100k runs / 100M metric points")
    ap.add_argument("--postgres", action="store_true",
                    help="search and history with the catalog in PostgreSQL beside SQLite (lakeml only)")
    ap.add_argument("--runs", type=int, default=None, help="number of runs (2,000; --scale: 100,000)")
    ap.add_argument("--points", type=int, default=1000, help="--scale: metric points per run")
    ap.add_argument("--data", default=None, help="data folder (reused across invocations)")
    args = ap.parse_args()
    os.environ.setdefault("PYICEBERG_HOME", tempfile.gettempdir())
    if args.scale:
        scale(args)
    elif args.postgres:
        args.runs = args.runs or 2000
        catalogs(args)
    else:
        args.runs = args.runs or 2000
        side_by_side(args)


if __name__ == "__main__":
    main()
