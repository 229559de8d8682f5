"""Estimators predicting now, so that another thread's use of one is refused.

``prepare`` keeps the target on the estimator and ``fit`` replaces its learned state, so a
second ``predict``, ``prepare`` or ``fit`` from another thread while one predicts would mix
two runs in one output.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from stfusion.errors import InvalidParameterError

#: id(estimator) -> the thread predicting with it
_BUSY: dict[int, int] = {}
_LOCK = threading.Lock()

_COPY = (
    "prediction keeps the target on the estimator, so each thread needs its own copy "
    "(copy.deepcopy(est), fitted state included)."
)


@contextlib.contextmanager
def predicting(est: Any) -> Iterator[None]:
    """Mark ``est`` as predicting in this thread; refused if it already is, anywhere."""
    with _LOCK:
        if id(est) in _BUSY:
            raise InvalidParameterError(
                f"{est.name}: this estimator is already predicting (in another thread): {_COPY}"
            )
        _BUSY[id(est)] = threading.get_ident()
    try:
        yield
    finally:
        with _LOCK:
            _BUSY.pop(id(est), None)


def refuse_while_predicting(est: Any, what: str) -> None:
    """Refuse ``what`` (``"fit()"``, ``"prepare()"``) on ``est`` while another thread
    predicts with it (its own thread's calls, inside its prediction, are its own)."""
    with _LOCK:
        owner = _BUSY.get(id(est))
    if owner is not None and owner != threading.get_ident():
        raise InvalidParameterError(
            f"{est.name}: {what} while this estimator is predicting in another thread: {_COPY}"
        )
