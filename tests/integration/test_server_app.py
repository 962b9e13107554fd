"""The hub's app in-process on a real uvicorn (a thread, a free loopback port): the
pieces a team mounts in its own FastAPI app, and readiness when this instance's daemon
task dies."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from orchestrator.config import get_settings, load_settings
from orchestrator.daemon.config import EnterpriseConfig
from orchestrator.server import CorrelationIdMiddleware, create_app, hub_router, lifespan
from tests.support.hubserver import free_port


class ThreadServer:
    """uvicorn serving ``app`` on a thread until ``stop()``."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def test_a_team_mounts_the_router_lifespan_and_middleware(db_url, tmp_path, monkeypatch):
    """FastAPI(lifespan=lifespan) + hub_router() + CorrelationIdMiddleware in the team's
    own app: the hub starts from the settings, health and metrics answer, the team's
    route gets the correlation id too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(tmp_path / "none.json"))
    get_settings.cache_clear()
    app = FastAPI(lifespan=lifespan)
    app.include_router(hub_router())
    app.add_middleware(CorrelationIdMiddleware)

    @app.get("/team/hello")
    async def hello() -> dict[str, str]:
        from orchestrator.logs.context import peek_correlation_id

        return {"correlation_id": peek_correlation_id() or ""}

    try:
        with ThreadServer(app) as served:
            assert httpx.get(served.url + "/health/ready", timeout=10).json() == {"status": "ready"}
            hello = httpx.get(served.url + "/team/hello", headers={"X-Correlation-ID": "team-1"})
            assert hello.json() == {"correlation_id": "team-1"}
            assert hello.headers["x-correlation-id"] == "team-1"
            assert httpx.get(served.url + "/metrics").status_code == 200
            assert app.state.hub.manager is not None and app.state.hub.manager.running
        assert app.state.hub.executor is None and app.state.hub.manager is None
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("how", ["cancelled", "stopped"])
def test_ready_says_503_when_this_instances_daemon_task_died(db_url, tmp_path, how):
    """Kill the daemon part of a running app: ready answers 503 naming it, full health
    has an unhealthy "daemon" component, live still answers."""
    settings = load_settings(None).model_copy(update={"secrets_file": tmp_path / "none.json"})
    app = create_app(settings, db_url, config=EnterpriseConfig())
    with ThreadServer(app) as served:
        assert httpx.get(served.url + "/health/ready").status_code == 200
        manager = app.state.hub.manager
        loop = manager._task.get_loop()
        if how == "cancelled":
            loop.call_soon_threadsafe(manager._task.cancel)
        else:
            manager._stop.set()  # the loop ends as if asked to stop, unasked
            loop.call_soon_threadsafe(lambda: None)
        deadline = time.monotonic() + 10
        while manager.running and time.monotonic() < deadline:
            time.sleep(0.05)
        deadline = time.monotonic() + 10  # the readiness answer is cached for a second
        ready = httpx.get(served.url + "/health/ready")
        while ready.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready = httpx.get(served.url + "/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reasons"] == ["the daemon task of this instance is not running"]
        full = httpx.get(served.url + "/health")
        assert full.status_code == 503
        daemon = next(c for c in full.json()["components"] if c["name"] == "daemon")
        assert daemon["status"] == "unhealthy"
        assert httpx.get(served.url + "/health/live").status_code == 200
