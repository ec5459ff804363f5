"""Group sizes on pandas groupby results, for the small-sample warnings of answer claims (docs/claims.md).

Runs inside the sandbox: the fork server installs it once, before the libraries are hardened. A groupby reduction
(`mean`, `sum`, `agg`, …) then returns its usual result with `attrs["group_sizes"]` = {"levels": n, "sizes":
{label: rows}}; pandas carries attrs through sorting, rounding, reset_index and the like, and `capture` puts them
on the table artifact. Labels are written the way table cells are (JSON values, levels joined by " / "), so the
host can match a row to its group. Trusted code: it adds no reach to user code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from typing import Any

MAX_GROUPS = 1_000  # small samples are a concern of few groups; more would only grow every result's attrs
REDUCTIONS = (
    "mean", "sum", "median", "min", "max", "count", "std", "var", "prod", "first", "last", "nunique", "agg",
    "aggregate", "quantile", "sem",
)  # fmt: skip


def install() -> None:
    from pandas.core.groupby import DataFrameGroupBy, SeriesGroupBy

    for cls in (DataFrameGroupBy, SeriesGroupBy):
        for name in REDUCTIONS:
            method = getattr(cls, name, None)
            if method is not None and not getattr(method, "records_group_sizes", False):
                setattr(cls, name, _recording(method))


def _recording(method: Any) -> Any:
    @functools.wraps(method)
    def reduction(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        with contextlib.suppress(Exception):  # never let the bookkeeping change what the user's code gets
            _record(self, result)
        return result

    reduction.records_group_sizes = True
    return reduction


def _record(grouped: Any, result: Any) -> None:
    pd = sys.modules["pandas"]
    if not isinstance(result, pd.Series | pd.DataFrame) or grouped.ngroups > MAX_GROUPS:
        return
    sizes = grouped.size()
    if isinstance(sizes, pd.DataFrame):  # as_index=False: the groups are columns, the size the last one
        keys = sizes.iloc[:, :-1]
        counts = sizes.iloc[:, -1]
    else:
        keys = pd.DataFrame({i: sizes.index.get_level_values(i) for i in range(sizes.index.nlevels)})
        counts = sizes
    labels = [" / ".join(str(v) for v in row) for row in _json_rows(keys)]
    result.attrs["group_sizes"] = {"levels": keys.shape[1], "sizes": dict(zip(labels, map(int, counts), strict=True))}


def _json_rows(frame: Any) -> list[list[Any]]:
    return json.loads(frame.to_json(orient="values", date_format="iso", default_handler=str))


def group_sizes_of(value: Any) -> dict[str, Any] | None:
    """The group sizes a groupby result carries, or None."""
    attrs = getattr(value, "attrs", None)
    sizes = attrs.get("group_sizes") if isinstance(attrs, dict) else None
    return sizes if isinstance(sizes, dict) and isinstance(sizes.get("sizes"), dict) else None
