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
# Counting rows per group is one more pass over the group codes: ~10% of a 1M-row groupby. Past this many rows
# it is skipped (docs/claims.md): such frames rarely have groups under 30 rows, and analysis speed comes first.
MAX_ROWS = 250_000
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
    if len(grouped.obj) > MAX_ROWS:
        return
    index, counts = _group_counts(grouped)
    keys = pd.DataFrame({i: index.get_level_values(i) for i in range(index.nlevels)})
    labels = [" / ".join(str(v) for v in row) for row in _json_rows(keys)]
    result.attrs["group_sizes"] = {"levels": index.nlevels, "sizes": dict(zip(labels, map(int, counts), strict=True))}


def _group_counts(grouped: Any) -> tuple[Any, Any]:
    """(group labels, rows per group). The reduction just computed each row's group code, so counting those
    codes costs one pass; `size()` (the public route, used when pandas' internals differ) groups again."""
    np = sys.modules["numpy"]
    try:
        grouper = grouped._grouper
        ids = np.asarray(grouper.ids)
        if ids.size and ids.min() < 0:  # rows whose key is NaN belong to no group
            ids = ids[ids >= 0]
        counts = np.bincount(ids, minlength=grouper.ngroups)
        index = grouper.result_index
        if len(index) == len(counts):
            return index, counts
    except Exception:
        pass
    sizes = grouped.size()
    if isinstance(sizes, sys.modules["pandas"].DataFrame):  # as_index=False: the size is the last column
        sizes = sizes.set_index(list(sizes.columns[:-1])).iloc[:, 0]
    return sizes.index, sizes.to_numpy()


def _json_rows(frame: Any) -> list[list[Any]]:
    return json.loads(frame.to_json(orient="values", date_format="iso", default_handler=str))


def group_sizes_of(value: Any) -> dict[str, Any] | None:
    """The group sizes a groupby result carries, or None."""
    attrs = getattr(value, "attrs", None)
    sizes = attrs.get("group_sizes") if isinstance(attrs, dict) else None
    return sizes if isinstance(sizes, dict) and isinstance(sizes.get("sizes"), dict) else None
