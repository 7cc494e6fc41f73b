import pytest

from clusters.tasks import apply_dataplane


@pytest.fixture
def sent(monkeypatch):
    """The applies sent to the dataplane worker (kwargs of each), instead of a broker."""
    calls = []
    monkeypatch.setattr(apply_dataplane, "apply_async",
                        lambda args=None, kwargs=None, **options: calls.append(kwargs or {}))
    return calls
