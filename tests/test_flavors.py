"""Model flavors: save with log_model, load with load_model from runs:/ and models:/ URIs, in this
process and in fresh ones; the MLmodel file; declared requirements; ONNX with and without onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import lakeml
from lakeml.errors import InvalidInputError, MissingDependencyError, NotFoundError
from lakeml.registry.signature import ModelSignature, check_input, infer_signature
from tests.workers.lakes import lake_spec

ROOT = Path(__file__).resolve().parent.parent
X, Y = load_iris(return_X_y=True)


def in_fresh_process(lake, code: str) -> str:
    """Run ``code`` (with ``lake`` opened from its spec) in a new interpreter; returns stdout.

    What this process logged is committed first: another process sees it only once it is in Iceberg."""
    lake.flush()
    prog = "import json, sys\nfrom tests.workers.lakes import open_spec\nlake = open_spec(sys.argv[1])\n" + code
    res = subprocess.run([sys.executable, "-c", prog, json.dumps(lake_spec(lake))], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


def test_sklearn_round_trip_through_every_uri(lake):
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    run = lake.create_run("flavors")
    sig = infer_signature(X, clf.predict(X))
    info = lake.log_model(run.id, clf, "model", signature=sig, registered_model_name="iris",
                          metadata={"owner": "ds-team"})
    assert info.model_uri == f"runs:/{run.id}/model" and info.flavor == "sklearn"
    assert info.registered_version == 1 and info.metadata == {"owner": "ds-team"}
    files = {a.path for a in lake.list_artifacts(run.id, "model")}
    assert files == {"model/MLmodel", "model/model.joblib", "model/requirements.txt"}
    lake.set_alias("iris", "champion", 1)
    expected = clf.predict(X)
    for uri in (info.model_uri, "models:/iris/1", "models:/iris@champion", "models:/iris/latest", "models:/iris"):
        assert (lake.load_model(uri).predict(X) == expected).all(), uri
    meta = lake.get_model_info("models:/iris@champion")
    assert meta.signature == sig.to_dict() and meta.requirements == [f"scikit-learn=={__import__('sklearn').__version__}"]
    assert meta.options["serialization"] == "joblib" and meta.run_id == run.id
    out = in_fresh_process(lake, "import numpy as np\nm = lake.load_model('models:/iris@champion')\n"
                                 "print(int(m.predict(np.array([[5.1, 3.5, 1.4, 0.2]]))[0]))")
    assert out == str(int(clf.predict(X[:1])[0]))


def test_fluent_log_model_and_load_model(fluent_lake):
    clf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y)
    with lakeml.start_run(experiment="fluent-models") as run:
        info = lakeml.log_model(clf, "model", signature=lakeml.infer_signature(X[:5], clf.predict(X[:5])))
    assert info.model_uri == f"runs:/{run.id}/model"
    mv = lakeml.register_model(info.model_uri, "forest")
    assert mv.version == 1 and mv.flavor == "sklearn"
    assert (lakeml.load_model("models:/forest/1").predict(X) == clf.predict(X)).all()


def scale(rows):
    """An importable module-level function: stored by reference."""
    return [2 * r for r in rows]


def test_python_flavor_reference_closure_and_code_paths(file_lake, tmp_path):
    lake = file_lake
    run = lake.create_run("py")
    by_ref = lake.log_model(run.id, scale, "by-ref", pip_requirements=["numpy"])
    assert by_ref.flavor == "python" and by_ref.options == {"loader": "reference", "callable": f"{__name__}:scale"}
    assert lake.load_model(by_ref.model_uri) is scale

    factor = 3
    closure = lake.log_model(run.id, lambda rows: [factor * r for r in rows], "closure")
    assert closure.options["loader"] == "cloudpickle"
    assert any(r.startswith("cloudpickle==") for r in closure.requirements)

    mod = tmp_path / "scorer_mod.py"
    mod.write_text(textwrap.dedent("""
        class Scorer:
            def __init__(self, bias):
                self.bias = bias
            def predict(self, rows):
                return [r + self.bias for r in rows]
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import scorer_mod

        coded = lake.log_model(run.id, scorer_mod.Scorer(10), "coded", code_paths=[str(mod)],
                               pip_requirements=["pyarrow"])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("scorer_mod", None)
    assert coded.options["code_dir"] == "code" and coded.requirements == ["pyarrow"]
    # a fresh interpreter has neither the closure's frame nor scorer_mod on its path
    out = in_fresh_process(lake, f"print(lake.load_model({closure.model_uri!r})([1, 2]), "
                                 f"lake.load_model({coded.model_uri!r}).predict([1, 2]))")
    assert out == "[3, 6] [11, 12]"


def test_declared_requirements_are_checked_when_loading(file_lake):
    lake = file_lake
    run = lake.create_run("reqs")
    missing = lake.log_model(run.id, scale, "missing", pip_requirements=["lakeml-no-such-package==1.0"])
    with pytest.raises(MissingDependencyError, match="pip install 'lakeml-no-such-package==1.0'"):
        lake.load_model(missing.model_uri)
    old = lake.log_model(run.id, scale, "old", pip_requirements=["pyarrow==0.0.1"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert lake.load_model(old.model_uri) is scale
    assert any("pyarrow" in str(w.message) and "0.0.1" in str(w.message) for w in caught)
    with pytest.raises(InvalidInputError, match="not of the form"):
        lake.log_model(run.id, scale, "bad-req", pip_requirements=["==1.0"])


def test_onnx_flavor_with_onnxruntime(file_lake):
    import onnxruntime  # noqa: F401 - part of the test extra: a missing one fails here
    lake = file_lake
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    run = lake.create_run("onnx")
    info = lake.log_model(run.id, clf, "onnx", flavor="onnx", input_example=X[:5])
    assert info.flavor == "onnx" and info.requirements[0].startswith("onnxruntime==")
    assert info.signature["inputs"]["shape"] == [-1, 4]
    mv = lake.register_model("iris-onnx", run_id=run.id, artifact_path="onnx")
    model = lake.load_model(mv.model_uri)
    assert (model.predict(X) == clf.predict(X)).all()
    # an onnx.ModelProto is detected as the onnx flavor
    from skl2onnx import to_onnx

    proto = to_onnx(clf, X[:1].astype(np.float32))
    info2 = lake.log_model(run.id, proto, "proto")
    assert info2.flavor == "onnx"
    assert (lake.load_model(info2.model_uri).predict(X[:10]) == clf.predict(X[:10])).all()
    with pytest.raises(InvalidInputError, match="onnxruntime cannot load"):
        lake.log_model(run.id, b"not an onnx graph", "garbage", flavor="onnx")


def test_onnx_flavor_without_onnxruntime_names_the_pip_command(file_lake):
    """In a process where onnxruntime cannot be imported, saving and loading ONNX fail clearly."""
    lake = file_lake
    run = lake.create_run("onnx-missing")
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    stored = None
    try:
        import onnxruntime  # noqa: F401

        stored = lake.log_model(run.id, clf, "onnx", flavor="onnx", input_example=X[:5]).model_uri
    except ImportError:
        pass
    lake.set_terminated(run.id, "FINISHED")
    code = textwrap.dedent(f"""
        sys.modules["onnxruntime"] = None  # an import of it now raises ImportError, as when it is absent
        from lakeml.errors import MissingDependencyError
        from sklearn.linear_model import LogisticRegression
        msgs = []
        try:
            lake.log_model({run.id!r}, LogisticRegression().fit([[0], [1]], [0, 1]), "m2", flavor="onnx",
                           input_example=[[0.0]])
        except MissingDependencyError as e:
            msgs.append(str(e))
        if {stored!r}:
            try:
                lake.load_model({stored!r})
            except MissingDependencyError as e:
                msgs.append(str(e))
        print(json.dumps(msgs))
    """)
    msgs = json.loads(in_fresh_process(lake, code))
    assert len(msgs) == (2 if stored else 1)
    assert all("pip install" in m and "onnxruntime" in m for m in msgs)


def test_load_model_bad_uris(file_lake, tmp_path):
    lake = file_lake
    run = lake.create_run("bad")
    lake.log_model(run.id, scale, "model")
    with pytest.raises(NotFoundError, match="no model is stored"):
        lake.load_model(f"runs:/{run.id}/elsewhere")
    with pytest.raises(InvalidInputError, match="runs:/<run id"):
        lake.load_model("runs:/abc/model")
    with pytest.raises(NotFoundError, match="no registered model"):
        lake.load_model("models:/ghost/1")
    with pytest.raises(InvalidInputError, match="names no model"):
        lake.load_model("models:/")
    with pytest.raises(InvalidInputError, match="version number or 'latest'"):
        lake.load_model("models:/ghost/x1")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotFoundError, match="MLmodel"):
        lake.load_model(str(tmp_path / "plain"))
    with pytest.raises(InvalidInputError, match="cannot log a object"):
        lake.log_model(run.id, object(), "nothing")
    with pytest.raises(InvalidInputError, match="unknown model flavor"):
        lake.log_model(run.id, scale, "x", flavor="tensorflow")
    with pytest.raises(InvalidInputError, match="folder inside the run"):
        lake.log_model(run.id, scale, "")


def test_a_downloaded_model_folder_loads_from_its_path(file_lake, tmp_path):
    lake = file_lake
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    run = lake.create_run("path")
    lake.log_model(run.id, clf, "model")
    local = lake.download_artifacts(run.id, "model", tmp_path / "dl")
    assert yaml.safe_load((Path(local) / "MLmodel").read_text())["flavor"] == "sklearn"
    assert (lake.load_model(local).predict(X) == clf.predict(X)).all()


def test_signatures():
    sig = infer_signature({"age": np.array([1.0, 2.0]), "city": ["a", "b"]}, np.array([0, 1]))
    assert sig.inputs == [{"name": "age", "type": "double"}, {"name": "city", "type": "string"}]
    assert sig.outputs == {"type": "tensor", "dtype": "int64", "shape": [-1]}
    import pyarrow as pa

    tbl = pa.table({"a": [1], "b": [1.5]})
    assert infer_signature(tbl).inputs == [{"name": "a", "type": "long"}, {"name": "b", "type": "double"}]
    check_input(sig.to_dict(), {"age": [3.0], "city": ["c"]})
    with pytest.raises(InvalidInputError, match="missing column"):
        check_input(sig.to_dict(), {"age": [3.0]})
    tensor = infer_signature(X).to_dict()
    check_input(tensor, X[:2])
    with pytest.raises(InvalidInputError, match="shape"):
        check_input(tensor, X[:, :3])
    assert ModelSignature.from_dict(tensor).inputs["dtype"] == "float64"
    with pytest.raises(InvalidInputError, match="cannot infer a schema"):
        infer_signature(object())


class _Planted:
    """A pickle that touches a file when it is loaded: what a hostile model folder can do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_untrusted_loading_refuses_pickled_flavors_before_unpickling(fluent_lake, tmp_path):
    lake = fluent_lake
    run = lake.create_run("trust")
    lake.log_model(run.id, lambda rows: rows, "model")  # python flavor, stored with cloudpickle
    folder = Path(lake.download_artifacts(run.id, "model", tmp_path / "dl"))
    marker = tmp_path / "pickle-ran"
    import pickle

    (folder / yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python"]["file"]).write_bytes(
        pickle.dumps(_Planted(marker)))
    with pytest.raises(InvalidInputError, match=r"trusted=False.*'python'.*ONNX"):
        lake.load_model(str(folder), trusted=False)
    assert not marker.exists(), "the refusal comes before anything is unpickled"
    lake.load_model(str(folder))  # trusted (the default): the stored code runs, as docs/registry.md warns
    assert marker.exists()

    lake.log_model(run.id, LogisticRegression(max_iter=300).fit(X, Y), "sk", registered_model_name="iris-sk")
    with pytest.raises(InvalidInputError, match=r"'sklearn' is a joblib pickle"):
        lake.load_model("models:/iris-sk/1", trusted=False)
    with pytest.raises(InvalidInputError, match="trusted=False"):
        lakeml.load_model("models:/iris-sk/1", trusted=False)  # the fluent verb too


def test_untrusted_loading_accepts_onnx(file_lake):
    pytest.importorskip("onnxruntime")
    lake = file_lake
    clf = LogisticRegression(max_iter=300).fit(X, Y)
    run = lake.create_run("trust-onnx")
    info = lake.log_model(run.id, clf, "onnx", flavor="onnx", input_example=X[:5])
    assert (lake.load_model(info.model_uri, trusted=False).predict(X) == clf.predict(X)).all()
