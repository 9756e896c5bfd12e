"""Hypothesis throws random keys, values, unicode, huge strings, NaN/inf and deep nesting at the
logging, registry and SQL entry points. Every failure must be a typed LakemlError, and afterwards
every good call's data reads back: no bad call corrupts the tables or the buffers."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeml
from lakeml.errors import LakemlError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=True)

nested = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                      lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner,
                                                                                           max_size=4)),
                      max_leaves=30)
deep = st.integers(min_value=50, max_value=400).map(lambda n: _deep(n))
huge = st.sampled_from([10_000, 100_000, 1_000_000]).map(lambda n: "é" * n)
# what os.fsdecode makes of a non-UTF-8 file name: strings with lone surrogates
fsdecoded = st.binary(min_size=1, max_size=20).map(lambda b: (b + b"\xff").decode("utf-8", "surrogateescape"))
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 5, max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300), st.binary(max_size=50),
                     st.decimals(allow_nan=True), st.complex_numbers(), nested, deep, huge, fsdecoded)
keys = st.one_of(st.from_regex(r"[\w\-. /:]{1,40}", fullmatch=True), st.text(max_size=300), anything)


def _deep(n: int):
    v: object = "bottom"
    for _ in range(n):
        v = {"k": [v]}
    return v


def _hashable(v):
    """``v`` itself when it can be a dict key (of any type: lakeml must refuse the bad ones), else its repr."""
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


@pytest.fixture
def fuzz_lake(tmp_path):
    lake = lakeml.connect(warehouse=tmp_path / "wh", commit_interval=0.2, commit_deadline=60)
    yield lake
    lake.close()


def test_fuzz_logging(fuzz_lake):
    lake = fuzz_lake
    run_id = lake.create_run("fuzz").run_id
    accepted: Counter = Counter()
    good = []

    @settings(max_examples=300, **SETTINGS)
    @given(call=st.sampled_from(["metric", "param", "tag", "batch", "run", "experiment"]), key=keys,
           value=anything, step=st.one_of(st.integers(), anything), ts=st.one_of(st.none(), anything))
    def one(call, key, value, step, ts):
        try:
            if call == "metric":
                lake.log_metric(run_id, key, value, step=step, timestamp=ts)
                accepted[key] += 1
            elif call == "param":
                lake.log_param(run_id, key, value)
            elif call == "tag":
                lake.set_tag(run_id, key, value)
            elif call == "batch":
                lake.log_batch(run_id, metrics=[lakeml.Metric(key, value, ts, step)], params=[lakeml.Param(key, value)])
            elif call == "run":
                lake.create_run(key, run_name=value, tags={_hashable(key): value})
            else:
                lake.get_or_create_experiment(key, tags={"t": value})
        except LakemlError:
            pass  # typed: fine
        except Exception as e:  # anything else is a bug
            raise AssertionError(f"{call}({key!r:.80}, {value!r:.80}) raised untyped {type(e).__name__}: {e}")
        i = len(good)
        lake.log_metric(run_id, "good", float(i), step=i)  # good data interleaved with the bad
        good.append(i)

    one()
    lake.flush()
    hist = lake.get_metric_history(run_id, "good")
    assert sorted(hist["step"].to_list()) == good and hist["value"].to_list() == [float(i) for i in sorted(good)]
    all_points = lake.get_metric_history(run_id)
    counts = Counter(all_points["key"].to_list())
    for key, n in accepted.items():
        assert counts[key] >= n  # (log_batch may add more under the same key)
    # the committer is healthy and nothing is stuck
    assert lake.committer.last_error is None and lake.committer.pending_rows() == 0


def test_fuzz_sql(fuzz_lake):
    lake = fuzz_lake
    run = lake.create_run("sql")
    lake.log_metric(run.run_id, "loss", 1.0)
    lake.flush()
    fragments = st.sampled_from(["SELECT", "*", "FROM", "lakeml.runs", "lakeml.metrics", "WHERE", "1=1", "'",
                                 '"', ";", "DROP TABLE lakeml.runs", "COPY lakeml.runs TO '/tmp/x.csv'", "ATTACH",
                                 "read_csv('/etc/passwd')", "INSTALL httpfs", "(", ")", "NaN", "-- ", "\x00",
                                 "UNION", "GROUP BY", "1e400", "🦆", "LIMIT -1"])
    text = st.one_of(st.lists(fragments, min_size=1, max_size=8).map(" ".join), st.text(max_size=200), huge)

    @settings(max_examples=150, **SETTINGS)
    @given(query=text)
    def one(query):
        try:
            lake.sql(query)
        except LakemlError:
            pass
        except Exception as e:
            raise AssertionError(f"sql({query!r:.120}) raised untyped {type(e).__name__}: {e}")

    one()
    # the lake is intact: writes still work, reads still see everything
    lake.log_metric(run.run_id, "loss", 2.0, step=1)
    lake.flush()
    assert sorted(lake.get_metric_history(run.run_id, "loss")["value"].to_list()) == [1.0, 2.0]
    assert lake.sql("SELECT count(*) AS n FROM lakeml.runs")["n"][0] >= 1


def test_fuzz_search(fuzz_lake):
    lake = fuzz_lake
    run = lake.create_run("search", run_name="r")
    lake.log_param(run.run_id, "p", 6)
    lake.log_metric(run.run_id, "loss", 0.5)
    lake.set_terminated(run.run_id)
    words = st.sampled_from(["metrics.loss", "params.p", "tags.t", "attributes.start_time", "attributes.status",
                             "metrics.`a b`", "nope.x", "=", "!=", "<", ">=", "LIKE", "ILIKE", "IN", "NOT", "IS",
                             "NULL", "(", ")", ",", "AND", "OR", "'x'", "'abc'", "'0.5'", "1", "-1e400", "1.5",
                             "'2024-01-01'", "'it''s'", "'", "\n", "metrics.k1 > 0 AND metrics.k2 > 0"])
    text = st.one_of(st.lists(words, min_size=1, max_size=12).map(" ".join), st.text(max_size=100), anything)
    order = st.one_of(st.none(), st.lists(st.one_of(words, anything), max_size=3), anything)

    @settings(max_examples=200, **SETTINGS)
    @given(flt=text, order_by=order, max_results=st.one_of(st.integers(min_value=-2, max_value=5), anything))
    def one(flt, order_by, max_results):
        try:
            lake.search_runs("search", filter_string=flt, order_by=order_by, max_results=max_results)
        except LakemlError:
            pass
        except Exception as e:
            raise AssertionError(f"search_runs({flt!r:.120}, {order_by!r:.60}, {max_results!r:.40}) raised "
                                 f"untyped {type(e).__name__}: {e}")

    one()
    assert lake.search_runs("search", "params.p < 10")["run_name"].to_list() == ["r"]


def test_fuzz_registry(fuzz_lake):
    lake = fuzz_lake
    run = lake.create_run("reg")
    lake.flush()
    lake.create_model("good-model")
    made = ["good-model"]

    @settings(max_examples=60, **SETTINGS)
    @given(call=st.sampled_from(["create", "update", "register", "alias", "tag", "get"]), name=keys, value=anything,
           version=st.one_of(st.integers(min_value=-3, max_value=5), anything))
    def one(call, name, value, version):
        try:
            if call == "create":
                lake.create_model(name, description=value, tags={"t": value})
                made.append(name)
            elif call == "update":
                lake.update_model("good-model", description=value, tags={_hashable(name): value})
            elif call == "register":
                lake.register_model("good-model", run_id=value if isinstance(value, str) else run.run_id,
                                    artifact_path=name, tags={"k": value})
            elif call == "alias":
                lake.set_alias("good-model", name, version)
            elif call == "tag":
                lake.set_model_version_tag("good-model", version, name, value)
            else:
                lake.get_model_version(name, version)
        except LakemlError:
            pass
        except Exception as e:
            raise AssertionError(f"{call}({name!r:.80}, {value!r:.80}, {version!r:.40}) raised untyped "
                                 f"{type(e).__name__}: {e}")

    one()
    names = {m.name for m in lake.list_models()}
    assert set(made) <= names
    lake.log_metric(run.run_id, "after", 1.0)
    lake.flush()
    assert lake.get_run(run.run_id).metrics["after"] == 1.0
    assert math.isfinite(lake.get_run(run.run_id).metrics["after"])
