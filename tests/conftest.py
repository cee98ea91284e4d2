"""Shared fixtures: record a scenario in a real child process and get its Timeline."""

from __future__ import annotations

import pytest
from recording import record_timeline


@pytest.fixture
def record():
    """`record(name, **params)` -> Timeline of a real traced run."""
    return record_timeline
