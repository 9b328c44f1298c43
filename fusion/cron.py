"""Five-field cron schedules (minute hour day-of-month month day-of-week), as a PingSource reads them."""

from __future__ import annotations

from datetime import datetime

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


class CronError(ValueError):
    pass


def _field(expression: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in expression.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start_text, end_text = body.split("-", 1)
            start, end = int(start_text), int(end_text)
        else:
            start = int(body)
            end = high if step_text else start
        if not (low <= start <= end <= high) or step < 1:
            raise CronError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


class Cron:
    def __init__(self, expression: str):
        fields = expression.split()
        if len(fields) != 5:
            raise CronError(f"cron schedule {expression!r} must have five fields")
        try:
            self.sets = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
        except ValueError as exc:
            raise CronError(f"cron schedule {expression!r}: {exc}") from None
        self.expression = expression

    def matches(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self.sets
        return (
            moment.minute in minute
            and moment.hour in hour
            and moment.day in day
            and moment.month in month
            and (moment.isoweekday() % 7) in weekday
        )
