"""Snippets of the pandas code the analyst writes: loading, date parsing, filters, time periods, results."""

from __future__ import annotations

from analysis.agent.offline.understand import Filter, Request

# Written into the code when a question needs dates: text columns in any common format become datetimes,
# and a column that does not hold dates stops the run with a message the analyst reports as is.
AS_DATES = """
def as_dates(values, name, known=None):
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype('string').str.strip()
    present = int(text.notna().sum())
    best = None
    for fmt in ((known,) if known else ()) + ('ISO8601', '%m/%d/%Y', '%d/%m/%Y', '%d.%m.%Y', '%Y/%m/%d', '%d-%m-%Y', '%b %d, %Y', '%d %b %Y', 'mixed'):
        parsed = pd.to_datetime(text, format=fmt, errors='coerce')
        if best is None or parsed.notna().sum() > best.notna().sum():
            best = parsed
        if best.notna().sum() >= present:
            break
    read = int(best.notna().sum())
    if read < 0.9 * present:
        raise ValueError(f'{name} does not hold dates: only {read} of {present} values read as dates')
    return best
"""

PERIOD_OF = """
def period_of(dates, grain):
    if grain == 'day':
        return dates.dt.strftime('%Y-%m-%d')
    if grain == 'week':
        return dates.dt.to_period('W').dt.start_time.dt.strftime('%Y-%m-%d')
    if grain == 'month':
        return dates.dt.to_period('M').astype(str)
    if grain == 'quarter':
        return dates.dt.to_period('Q').astype(str)
    return dates.dt.year


def period_start(dates, grain):
    freq = {'day': 'D', 'week': 'W', 'month': 'M', 'quarter': 'Q', 'year': 'Y'}[grain]
    return dates.dt.to_period(freq).dt.start_time


def every_period(dates, grain):
    # Every period from the first to the last (empty ones too): label -> start date.
    freq = {'day': 'D', 'week': 'W-MON', 'month': 'MS', 'quarter': 'QS', 'year': 'YS'}[grain]
    starts = period_start(dates, grain)
    every = pd.Series(pd.date_range(starts.min(), starts.max(), freq=freq))
    return pd.Series(every.values, index=period_of(every, grain).values)
"""

AUTO_GRAIN = """span = (df[{date!r}].max() - df[{date!r}].min()).days
grain = 'day' if span <= 62 else 'week' if span <= 190 else 'month' if span <= 1100 else 'year'
"""

GRAIN_NOUN = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}


def load(req: Request, *, dates: bool = False) -> str:
    """Imports, the read, date parsing when needed (a grain, a year/month filter), then the filters."""
    code = f"import pandas as pd\nimport plotly.express as px\n\ndf = {req.dataset.reader()}\n"
    if (dates or needs_dates(req)) and req.date is not None:
        d = req.date.name
        known = f", {req.date.date_format!r}" if req.date.date_format else ""
        code += AS_DATES + f"\ndf[{d!r}] = as_dates(df[{d!r}], {d!r}{known})\ndf = df[df[{d!r}].notna()]\n"
    code += "".join(_filter_code(req, f) for f in req.filters)
    if req.filters:
        labels = " and ".join(f.label for f in req.filters)
        code += f"if df.empty:\n    raise ValueError({f'no rows {labels}'!r})\n"
    return code


def needs_dates(req: Request) -> bool:
    return bool(req.grain) or any(f.kind in ("year", "month") for f in req.filters)


def _filter_code(req: Request, f: Filter) -> str:
    if f.kind == "equals":
        assert f.column is not None
        return f"df = df[df[{f.column.name!r}].astype(str).isin({f.values!r})]\n"
    assert req.date is not None
    d = req.date.name
    if f.kind == "year":
        return f"df = df[df[{d!r}].dt.year.isin({f.values!r})]\n"
    keep = " | ".join(f"((df[{d!r}].dt.year == {y}) & (df[{d!r}].dt.month == {m}))" for y, m in f.values)
    return f"df = df[{keep}]\n"


def periods(req: Request) -> str:
    """Code that sets ``grain``, ``period`` (the label of each row's time period) and ``starts`` (every period
    from the first to the last, label → start date: totals and counts are 0 in a period without rows)."""
    assert req.date is not None
    d = req.date.name
    grain = AUTO_GRAIN.format(date=d) if req.grain == "auto" else f"grain = {req.grain!r}\n"
    return (
        PERIOD_OF
        + "\n"
        + grain
        + (f"period = period_of(df[{d!r}], grain).rename('period')\nstarts = every_period(df[{d!r}], grain)\n")
    )


LISTED = 12  # values an answer lists (and final_result carries); the table artifact has them all


def rounded_dict(series: str) -> str:
    """A dict of the first ``LISTED`` items of ``series``: str keys, values rounded to 4 decimals (what answers
    quote). Capped so the observation the analyst reads back is never truncated."""
    return f"{{str(k): round(float(v), 4) for k, v in {series}.head({LISTED}).items()}}"
