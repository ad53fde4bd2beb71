"""Shared fixtures: moto in-process, tables and queues bootstrapped, a Chalice test client."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _one_call_at_a_time() -> None:
    """In-process moto answers one AWS call at a time, as the locked emulator of `make run`
    does (`chalicelib/emulator.py`). DynamoDB checks a condition and writes in one atomic
    step; moto's models do not across threads, so without this two threads of one test (a
    webhook batch's parallel messages, a job's segments) could both pass one condition."""
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock, process = threading.RLock(), BotocoreStubber.process_request

    def process_request(self, request):
        with lock:
            return process(self, request)

    BotocoreStubber.process_request = process_request


_one_call_at_a_time()


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("LOYALTY_STAGE", "local")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LOYALTY_JWT_SECRET", raising=False)
    from tests.factories import reset_caches

    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def aws(aws_env):
    from moto import mock_aws

    with mock_aws():
        from chalicelib.bootstrap import bootstrap

        bootstrap()
        yield


@pytest.fixture
def client(aws):
    from chalice.test import Client

    from app import app
    from tests.factories import ApiClient

    with Client(app) as c:
        yield ApiClient(c)


@pytest.fixture
def api(client):
    return client





@pytest.fixture
def locked_emulator(aws_env, monkeypatch):
    """The embedded emulator of `make run` (`chalicelib/emulator.py`: moto behind a lock, with
    its fidelity fixes) in this process, empty."""
    import requests

    from chalicelib.bootstrap import bootstrap
    from chalicelib.emulator import start_in_thread
    from tests.factories import reset_caches

    server, url = start_in_thread()
    requests.post(url + "/moto-api/reset")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    reset_caches()
    bootstrap()
    yield url
    requests.post(url + "/moto-api/reset")
    server.shutdown()
