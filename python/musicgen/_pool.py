"""Idle sessions of one model, shared by the threads that call it."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator


class _Pool:
    """Idle sessions of one model: a call takes one (or makes a new one) and gives it back."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._idle: list = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        with self._lock:
            s = self._idle.pop() if self._idle else None
        if s is None:
            s = self._make()
        try:
            yield s
        finally:
            with self._lock:
                self._idle.append(s)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()
