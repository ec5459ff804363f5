"""Plans and answers: one aggregate, row counts, per-group aggregates, top/bottom N, value counts."""

from __future__ import annotations

from analysis.agent.offline import code as c
from analysis.agent.offline.intents.base import (
    Plan,
    agg_for,
    fmt,
    fmt_all,
    listed,
    plural,
    scope,
    series,
    value_label,
)
from analysis.agent.offline.understand import Request
from analysis.agent.offline.words import AGG_LABEL

# --- aggregates ------------------------------------------------------------------------------------------


def single_agg(req: Request) -> str:
    if req.agg in ("count", "nunique") and not req.numeric:
        return "nunique"
    return req.agg or ("max" if req.rank == "top" else "min")


def single_plan(req: Request) -> Plan:
    agg, col = single_agg(req), req.measures[0].name
    expr = f"df[{col!r}].{agg}()"
    cast = "int" if agg in ("count", "nunique") else "float"
    code = c.load(req) + f"final_result = round({cast}({expr}), 4)\nfinal_result"
    return Plan(f"Compute the {AGG_LABEL[agg].lower()} of {col}{scope(req)}.", code)


def single_answer(req: Request, r) -> str:
    agg = single_agg(req)
    label = f"number of distinct {plural(req.measures[0].name)}" if agg == "nunique" else None
    label = label or f"{AGG_LABEL[agg].lower()} {req.measures[0].name}"
    return f"The {label}{scope(req)} is **{fmt(r)}**."


def count_plan(req: Request) -> Plan:
    code = c.load(req) + "final_result = int(len(df))\nfinal_result"
    return Plan(f"Count the rows of {req.dataset.label}{scope(req)}.", code)


def count_answer(req: Request, r) -> str:
    return f"{req.dataset.label} has **{fmt(r)} {plural(req.row_noun or 'row')}**{scope(req)}."


def group_plan(req: Request) -> Plan:
    """One or two groupings ("by region and product"); two are keyed "East / Laptop" in the answer."""
    agg, names = agg_for(req), [g.name for g in req.groups[:2]]
    label, keys = value_label(req, agg), repr(names[0]) if len(names) == 1 else repr(names)
    code = c.load(req) + (
        f"result = {series(req, keys, agg)}.rename({label!r}).sort_values(ascending=False)\n"
        f"rows = df.groupby({keys}).size().rename('rows')\n"
        "table = pd.concat([result, rows], axis=1).reset_index()\n"
    )
    if req.chart != "table":
        title = f"{label.capitalize()} by {' and '.join(names)}{scope(req)}"
        color = f", color={names[1]!r}, barmode='group'" if len(names) > 1 else ""
        code += f"fig = px.bar(table, x={names[0]!r}, y={label!r}{color}, title={title!r})\nfig.show()\n"
    if len(names) > 1:
        code += "result.index = [' / '.join(map(str, k)) for k in result.index]\n"
    code += f"final_result = {{'values': {c.rounded_dict('result')}, 'groups': int(len(result))}}\ntable"
    return Plan(f"Compute the {label} for each {' and '.join(names)}{scope(req)}.", code)


def group_answer(req: Request, r: dict) -> str:
    label = value_label(req, agg_for(req))
    values, by = r["values"], " and ".join(g.name for g in req.groups)
    first = next(iter(values.items()), None)
    best = f" Highest: **{first[0]}** ({fmt_all(values.values())(first[1])})." if first and len(values) > 1 else ""
    return f"{label.capitalize()} by {by}{scope(req)}: {listed(values, r['groups'])}.{best}"


def rank_n(req: Request) -> int:
    """N as asked; else 1 after "which", every group after "sort"/"rank", 5 otherwise."""
    return req.n or (1 if req.which else 1000 if req.sort else 5)


def topn_groups_plan(req: Request) -> Plan:
    agg, group, n = agg_for(req), req.group.name, rank_n(req)
    fn = "nsmallest" if req.rank == "bottom" else "nlargest"
    label = value_label(req, agg)
    code = c.load(req) + (f"result = {series(req, repr(group), agg)}.rename({label!r})\nranked = result.{fn}({n})\n")
    word = "Bottom" if fn == "nsmallest" else "Top"
    if req.chart not in (None, "table"):
        title = f"{word} {n} {group} by {label}{scope(req)}"
        code += f"fig = px.bar(ranked.reset_index(), x={group!r}, y={label!r}, title={title!r})\nfig.show()\n"
    code += f"final_result = {{'values': {c.rounded_dict('ranked')}, 'groups': int(len(ranked))}}\nranked.reset_index()"
    return Plan(f"Rank {group} by {label}{scope(req)}; keep the {word.lower()} {n}.", code)


def topn_groups_answer(req: Request, r: dict) -> str:
    label, values = value_label(req, agg_for(req)), r["values"]
    if len(values) == 1:
        ((k, v),) = values.items()
        word = "lowest" if req.rank == "bottom" else "highest"
        return f"**{k}** has the {word} {label}{scope(req)}: **{fmt(v)}**."
    if req.sort:
        order = "lowest first" if req.rank == "bottom" else "highest first"
        return f"{plural(req.group.name).capitalize()} by {label}{scope(req)}, {order}: {listed(values, r['groups'])}."
    word = "Bottom" if req.rank == "bottom" else "Top"
    return f"{word} {plural(req.group.name)} by {label}{scope(req)}: {listed(values, r['groups'])}."


def topn_rows_plan(req: Request) -> Plan:
    col, n = req.numeric[0].name, rank_n(req)
    fn = "nsmallest" if req.rank == "bottom" else "nlargest"
    code = c.load(req) + (
        f"rows = df.{fn}({n}, {col!r})\nfinal_result = [round(float(v), 4) for v in rows[{col!r}]]\nrows"
    )
    word = "bottom" if fn == "nsmallest" else "top"
    return Plan(f"Take the {word} {n} rows of {req.dataset.label} by {col}{scope(req)}.", code)


def topn_rows_answer(req: Request, r: list) -> str:
    word = "lowest" if req.rank == "bottom" else "highest"
    values = ", ".join(fmt(v) for v in r)
    return f"The {word} values of {req.numeric[0].name}{scope(req)} are **{values}** (rows in the table)."


def share_plan(req: Request) -> Plan:
    """ "What share of revenue comes from each region": each group's part of the total (rows when no measure)."""
    g = req.group.name
    label = value_label(req, "sum" if req.numeric else "count")
    code = c.load(req) + (
        f"result = {series(req, repr(g), 'sum' if req.numeric else 'count')}.rename({label!r})"
        ".sort_values(ascending=False)\n"
        "share = (result / result.sum()).rename('share')\n"
        "table = pd.concat([result, share], axis=1).reset_index()\n"
    )
    if req.chart != "table":
        code += (
            f"fig = px.pie(table, names={g!r}, values={label!r}, title={f'Share of {label} by {g}'!r})\nfig.show()\n"
        )
    code += (
        f"final_result = {{'total': round(float(result.sum()), 4), 'share': {c.rounded_dict('share')},"
        f" 'values': {c.rounded_dict('result')}, 'groups': int(len(result))}}\ntable"
    )
    return Plan(f"Compute each {g}'s share of the {label}{scope(req)}.", code)


def share_answer(req: Request, r: dict) -> str:
    label = value_label(req, "sum" if req.numeric else "count")
    f = fmt_all([r["total"], *r["values"].values()])
    parts = ", ".join(f"{k} {r['share'][k] * 100:.1f}% ({f(v)})" for k, v in r["values"].items())
    more = f"; all {fmt(r['groups'])} are in the table" if r["groups"] > len(r["values"]) else ""
    return f"Share of the {label}{scope(req)} (total {f(r['total'])}) by {req.group.name}: {parts}{more}."


def value_counts_plan(req: Request) -> Plan:
    col = req.measures[0].name
    code = c.load(req) + (
        f"result = df[{col!r}].value_counts().rename('rows')\n"
        f"fig = px.bar(result.reset_index(), x={col!r}, y='rows', title={f'Rows per {col}'!r})\n"
        f"fig.show()\nfinal_result = {{'values': {c.rounded_dict('result')}, 'groups': int(len(result))}}\n"
        "result.reset_index()"
    )
    return Plan(f"Count rows per {col}{scope(req)}.", code)


def value_counts_answer(req: Request, r: dict) -> str:
    return f"Rows per {req.measures[0].name}{scope(req)}: {listed(r['values'], r['groups'])}."
