"""Shared fixtures: a real server process on a free loopback port, with real models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voice_chat.client.launcher import LiveServer, free_port, start_server

__all__ = ["LiveServer", "free_port", "start_server", "stop_server"]


def stop_server(server: LiveServer) -> None:
    server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server (real models) shared by the whole test session.

    The whole suite is one client uploading far more cards and voices a minute than a person
    would: the upload rate limit is raised for it (tests/test_security_limits.py checks it).
    """
    env = {"VOICE_CHAT_MAX_UPLOADS_PER_MIN": "100000"}
    server = start_server(tmp_path_factory.mktemp("server-data"), env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """A throwaway PostgreSQL cluster on a free loopback port (see tests/pgcluster.py)."""
    from pgcluster import PgCluster

    cluster = PgCluster().start()
    yield cluster
    cluster.stop()
