"""What every reader shares: fakestop's reserved column namespace, the column a row that
cannot be parsed carries its error in, and one-line error messages."""

from __future__ import annotations

import polars as pl

#: prefix of fakestop's own columns; input columns named so are dropped when a file is read
RESERVED = "__"

#: the error of a row the reader could not parse (the row is kept, with this column set)
PARSE_ERROR = "__parse_error"

#: the columns every listing must have
REQUIRED_COLUMNS = ("listing_id", "title", "price")


def first_line(exc: BaseException) -> str:
    """An exception's message for a one-line error (polars adds hints on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def user_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop input columns in fakestop's own namespace (``__row``, ``__parse_error`` ...): a
    listings file must not collide with, or set, the runner's bookkeeping columns."""
    return frame.drop([c for c in frame.columns if c.startswith(RESERVED)])
