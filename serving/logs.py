"""The service's logs: one JSON object per line on stderr, an access line per request (request id, partner, route
template, status, latency — never a participant id, signal value or key)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

ACCESS = logging.getLogger("earlywarn.access")


class JsonLines(logging.Formatter):
    """A log record as a JSON object: time, level, logger, message, and the fields passed in `extra`."""

    FIELDS = ("request_id", "partner", "route", "method", "status", "latency_ms")

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= {k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)}
        if record.exc_info:
            line["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"  # no traceback values
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    """earlywarn's loggers write JSON lines to stderr at `level`, whatever BentoML does with the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("earlywarn")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def access(request_id: str, partner: str | None, route: str, method: str, status: int, seconds: float) -> None:
    ACCESS.info(
        "%s %s %d",
        method,
        route,
        status,
        extra={"request_id": request_id, "partner": partner, "route": route, "method": method, "status": status,
               "latency_ms": round(seconds * 1000, 1)},
    )  # fmt: skip
