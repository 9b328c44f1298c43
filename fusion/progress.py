"""A progress line for long command-line work: `what count/total`, rewritten in place on a terminal;
plain lines elsewhere (a log, CI), one every tenth of the way, so a file does not fill with them."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

PLAIN_STEPS = 10  # plain lines per run when the total is known
PLAIN_EVERY = 100  # a plain line every this many when it is not


class Progress:
    def __init__(self, what: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.count = 0
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._drawn = False

    def advance(self, count: int = 1, note: str | None = None) -> None:
        """`count` more done; `note` is a line kept above the progress line (in a log: instead of it)."""
        before, self.count = self.count, self.count + count
        if note is not None:
            self._clear()
            print(note, file=self.stream, flush=True)
        if self.live:
            self._draw()
        elif note is None and self._plain_line_due(before):
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        return f"{self.what} {self.count}/{self.total}" if self.total is not None else f"{self.what} {self.count}"

    def close(self) -> None:
        """End the progress line (a terminal gets its newline)."""
        if self._drawn:
            print(file=self.stream, flush=True)
            self._drawn = False

    def _draw(self) -> None:
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False

    def _plain_line_due(self, before: int) -> bool:
        if self.total is None:
            return self.count // PLAIN_EVERY > before // PLAIN_EVERY
        if self.count >= self.total:
            return before < self.total
        return self.count * PLAIN_STEPS // max(self.total, 1) > before * PLAIN_STEPS // max(self.total, 1)

    def __enter__(self) -> Progress:
        if self.live:
            self._draw()  # 0/total while the first item runs
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
