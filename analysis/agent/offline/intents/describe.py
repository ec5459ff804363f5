"""Plans and answers: overview, missing values, summary statistics, correlation, scatter, distribution."""

from __future__ import annotations

from analysis.agent.offline import code as c
from analysis.agent.offline.intents.base import (
    Plan,
    fmt,
    scope,
)
from analysis.agent.offline.understand import Request

# --- overview, describe, missing --------------------------------------------------------------------------


def _named_columns(req: Request) -> str:
    """The selection of the columns the question named (`[['a', 'b']]`), or nothing: the whole frame."""
    return f"[{[m.name for m in req.measures]!r}]" if req.measures else ""


def overview_plan(req: Request) -> Plan:
    code = c.load(req) + (
        "print(f'{len(df)} rows × {df.shape[1]} columns')\nprint(df.dtypes.to_string())\n"
        "final_result = {'rows': int(df.shape[0]), 'columns': int(df.shape[1]), 'names': list(map(str, df.columns))}\n"
        f"df.head({req.n or 10})"
    )
    return Plan(f"Load {req.dataset.label} and look at its shape, columns and first rows.", code)


def overview_answer(req: Request, r) -> str:
    names = ", ".join(r["names"][:40])
    return f"**{req.dataset.label}** has **{fmt(r['rows'])} rows** and **{fmt(r['columns'])} columns**: {names}."


def describe_plan(req: Request) -> Plan:
    code = c.load(req) + (
        f"desc = df{_named_columns(req)}.describe().round(4)\n"
        "final_result = {c: {k: (None if pd.isna(v) else float(v)) for k, v in desc[c].items()} for c in desc}\n"
        "desc"
    )
    return Plan(f"Compute summary statistics of {req.dataset.label}{scope(req)}.", code)


def describe_answer(req: Request, r) -> str:
    lines = [
        f"- **{col}**: mean {fmt(s.get('mean'))}, median {fmt(s.get('50%'))}, min {fmt(s.get('min'))}, "
        f"max {fmt(s.get('max'))}, std {fmt(s.get('std'))} (n={fmt(s.get('count'))})"
        for col, s in r.items()
        if "mean" in s
    ]
    if not lines:
        return "There are no numeric columns to describe."
    return f"Summary statistics{scope(req)}:\n" + "\n".join(lines)


def missing_plan(req: Request) -> Plan:
    code = c.load(req) + (
        f"missing = df{_named_columns(req)}.isna().sum()\n"
        "gaps = missing[missing > 0].sort_values(ascending=False)\n"
        "final_result = {'total': int(missing.sum()), 'columns': int(len(gaps)),"
        " 'per_column': {str(k): int(v) for k, v in gaps.items()}}\n"
        "missing.rename('missing').to_frame()"
    )
    return Plan(f"Count missing values per column of {req.dataset.label}{scope(req)}.", code)


def missing_answer(req: Request, r) -> str:
    if not r["total"]:
        return f"There are **no missing values** in {'the named columns' if req.measures else 'any column'}."
    listed = ", ".join(f"{k}: {fmt(v)}" for k, v in r["per_column"].items())
    return f"**{fmt(r['total'])} missing values**{scope(req)} in {fmt(r['columns'])} column(s): {listed}."


# --- correlation, scatter, distribution -------------------------------------------------------------------


def corr_plan(req: Request) -> Plan:
    if len(req.numeric) >= 2:
        a, b = req.numeric[0].name, req.numeric[1].name
        code = c.load(req) + f"final_result = round(float(df[{a!r}].corr(df[{b!r}])), 4)\nfinal_result"
        return Plan(f"Compute the Pearson correlation between {a} and {b}.", code)
    code = c.load(req) + (
        "corr = df.select_dtypes('number').corr().round(4)\n"
        "fig = px.imshow(corr, text_auto=True, title='Correlation matrix', color_continuous_scale='RdBu_r',"
        " zmin=-1, zmax=1)\nfig.show()\n"
        "pairs = corr.stack()\npairs = pairs[[a < b for a, b in pairs.index]]\n"
        "top = pairs.abs().sort_values(ascending=False).head(3)\n"
        "final_result = {f'{a} ~ {b}': float(pairs[(a, b)]) for a, b in top.index}\ncorr"
    )
    return Plan(f"Compute the correlation matrix of the numeric columns of {req.dataset.label}.", code)


def corr_answer(req: Request, r) -> str:
    if len(req.numeric) >= 2:
        return f"The correlation between {req.numeric[0].name} and {req.numeric[1].name} is **{r:.4g}**."
    if not r:
        return "There are not enough numeric columns to correlate."
    listed = ", ".join(f"{k}: {v:.4g}" for k, v in r.items())
    return f"Strongest correlations: **{listed}** (the full matrix is in the chart)."


def scatter_plan(req: Request) -> Plan:
    y, x = req.numeric[0].name, req.numeric[1].name  # "plot Y against X", "Y vs X"
    color = f", color={req.group.name!r}" if req.group else ""
    code = c.load(req) + (
        f"fig = px.scatter(df, x={x!r}, y={y!r}{color}, title={f'{y} vs {x}'!r})\n"
        f"fig.show()\nfinal_result = round(float(df[{x!r}].corr(df[{y!r}])), 4)"
    )
    return Plan(f"Draw a scatter plot of {y} against {x}{scope(req)}.", code)


def scatter_answer(req: Request, r) -> str:
    y, x = req.numeric[0].name, req.numeric[1].name
    return f"Here is {y} against {x}{scope(req)}; their correlation is **{r:.4g}**."


def distribution_plan(req: Request) -> Plan:
    col = req.numeric[0].name
    plot = (
        f"fig = px.box(df, y={col!r}, title={f'Distribution of {col}'!r})"
        if req.chart == "box"
        else f"fig = px.histogram(df, x={col!r}, nbins=30, title={f'Distribution of {col}'!r})"
    )
    code = (
        c.load(req)
        + plot
        + "\nfig.show()\n"
        + (
            f"s = df[{col!r}].dropna()\n"
            "final_result = {'count': int(s.count()), 'mean': round(float(s.mean()), 4),"
            " 'median': round(float(s.median()), 4), 'std': round(float(s.std()), 4),"
            " 'min': round(float(s.min()), 4), 'max': round(float(s.max()), 4)}"
        )
    )
    return Plan(f"Show the distribution of {col}{scope(req)}.", code)


def distribution_answer(req: Request, r) -> str:
    return (
        f"{req.numeric[0].name}{scope(req)}: mean **{fmt(r['mean'])}**, median **{fmt(r['median'])}**, "
        f"std {fmt(r['std'])}, range {fmt(r['min'])} to {fmt(r['max'])} over {fmt(r['count'])} values."
    )
