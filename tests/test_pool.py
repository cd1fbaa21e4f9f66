"""The one process pool: forked workers see what the parent prepared; results come back per item."""

from __future__ import annotations

import os

from atlas_registry import pool

PREPARED: dict[str, int] = {}


def _square_with_state(n: int) -> tuple[int, int, int]:
    return n * n, PREPARED.get("token", -1), os.getpid()


def _fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("three")
    return n


def test_every_item_comes_back_once_with_its_own_result():
    with pool.process_pool(2) as ex:
        got = {item: fut.result()[0] for item, fut in pool.finished(ex, _square_with_state, range(20))}
    assert got == {n: n * n for n in range(20)}


def test_workers_are_forked_and_inherit_the_parents_state():
    PREPARED["token"] = 4242  # set after import, before the pool starts: only a forked child sees it
    try:
        with pool.process_pool(2) as ex:
            results = [fut.result() for _, fut in pool.finished(ex, _square_with_state, range(6))]
    finally:
        PREPARED.clear()
    assert {token for _, token, _ in results} == {4242}
    assert os.getpid() not in {pid for _, _, pid in results}


def test_a_failing_call_is_reported_with_its_item():
    with pool.process_pool(2) as ex:
        outcomes = {item: fut.exception() for item, fut in pool.finished(ex, _fail_on_three, range(5))}
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "three"
    assert all(outcomes[n] is None for n in (0, 1, 2, 4))


def test_cpu_count_is_the_affinity_of_this_process():
    assert pool.cpu_count() == len(os.sched_getaffinity(0))
