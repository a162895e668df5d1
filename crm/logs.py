"""Logging filters.

uvicorn's access log prints each request's full path, query string included, and query strings
can carry secrets: Meta's webhook handshake sends the verify token as ``hub.verify_token``. The
access log keeps the path and drops the query (``crm.asgi`` installs this on uvicorn's logger).
"""

from __future__ import annotations

import logging


class HideQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                value.split("?", 1)[0] + "?…" if isinstance(value, str) and "?" in value else value
                for value in args
            )
        return True


def hide_query_strings() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideQueryStrings) for f in logger.filters):
        logger.addFilter(HideQueryStrings())
