"""Helpers shared by the serving tests: a uvicorn server in a thread on a free loopback port, and
small sklearn models registered in a lake."""

from __future__ import annotations

import threading
import time

import httpx

from tests.servers import free_port


class ThreadServer:
    """Run an ASGI app with uvicorn in a daemon thread on 127.0.0.1 (a real HTTP server)."""

    def __init__(self, app, timeout: float = 30):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the serving app did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def wait_for(url: str, timeout: float = 60, proc=None) -> None:
    """Poll GET ``url`` until it answers 200 (no fixed sleep); fail with the process's exit if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer in {timeout} s")
        time.sleep(0.1)


def register_iris(lake, name: str = "iris", alias: str = "champion"):
    """A LogisticRegression on the iris frame (4 named double columns), registered with ``alias``.
    Returns (model, X frame)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import lakeml

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    clf = LogisticRegression(max_iter=300).fit(X, y)
    run = lake.create_run("serving", run_name="iris-lr")
    lake.log_param(run.run_id, "C", 1.0)
    lake.log_metric(run.run_id, "accuracy", float((clf.predict(X) == y).mean()))
    lake.log_model(run.run_id, clf, "model", signature=lakeml.infer_signature(X, clf.predict(X)))
    lake.set_terminated(run.run_id)
    mv = lake.register_model(name, run_id=run.run_id, artifact_path="model")
    lake.set_alias(name, alias, mv.version)
    return clf, X


def register_constant(lake, name: str, value: float, alias: str | None = None, metric: float = 1.0):
    """A DummyRegressor always answering ``value`` (one double column ``x``); returns its version."""
    import numpy as np
    import pandas as pd
    from sklearn.dummy import DummyRegressor

    X = pd.DataFrame({"x": np.arange(4, dtype="float64")})
    model = DummyRegressor(strategy="constant", constant=value).fit(X, np.zeros(4))
    run = lake.create_run("serving", run_name=f"const-{value}")
    lake.log_metric(run.run_id, "score", metric)
    lake.log_model(run.run_id, model, "model", signature={"inputs": [{"name": "x", "type": "double"}],
                                                          "outputs": None})
    lake.set_terminated(run.run_id)
    mv = lake.register_model(name, run_id=run.run_id, artifact_path="model")
    if alias:
        lake.set_alias(name, alias, mv.version)
    return mv.version
