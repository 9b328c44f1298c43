"""The progress line of long command-line work: rewritten in place on a terminal, plain lines in a log."""

from __future__ import annotations

import io

from fusion.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_plain_line_per_tenth_of_the_way() -> None:
    log = io.StringIO()
    with Progress("seeding", 200, log) as progress:
        for _ in range(200):
            progress.advance()
    assert log.getvalue().splitlines() == [f"seeding {n}/200" for n in range(20, 201, 20)]


def test_a_short_run_in_a_log_gets_a_line_per_item() -> None:
    log = io.StringIO()
    with Progress("migrations", 3, log) as progress:
        for _ in range(3):
            progress.advance()
    assert log.getvalue().splitlines() == ["migrations 1/3", "migrations 2/3", "migrations 3/3"]


def test_without_a_total_a_log_gets_a_line_every_hundred() -> None:
    log = io.StringIO()
    with Progress("replaying", stream=log) as progress:
        progress.advance(250)
    assert log.getvalue().splitlines() == ["replaying 250"]


def test_a_terminal_line_is_rewritten_in_place_and_ended() -> None:
    terminal = Terminal()
    with Progress("seeding", 2, terminal) as progress:
        progress.advance()
        progress.advance()
    out = terminal.getvalue()
    assert out.count("\n") == 1 and out.endswith("seeding 2/2\n")
    assert out.split("\r\x1b[2K")[1:] == ["seeding 0/2", "seeding 1/2", "seeding 2/2\n"]


def test_notes_stay_above_the_line_on_a_terminal_and_replace_it_in_a_log() -> None:
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        with Progress("smoke test", 2, stream) as progress:
            progress.advance(note="PASS  health")
            progress.advance(note="PASS  create product")
    assert log.getvalue().splitlines() == ["PASS  health", "PASS  create product"]
    shown = terminal.getvalue().replace("\r\x1b[2K", "\n").split("\n")
    assert [line for line in shown if line] == ["smoke test 0/2", "PASS  health", "smoke test 1/2",
                                                "PASS  create product", "smoke test 2/2"]
