"""Run `async def test_…` functions, each in a fresh event loop (`asyncio.run`).

What the tests wrote out by hand before (`async def scenario(): …` then `asyncio.run(scenario())`).
pytest-asyncio would do it too, with loop scopes and async fixtures the course does not need;
one hook is enough.  Fixtures stay plain functions: a test that needs an async set-up awaits it.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None  # pytest calls it
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True
