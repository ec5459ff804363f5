"""Plans and answers over time: a measure per day/week/month/quarter/year, and growth between periods."""

from __future__ import annotations

from analysis.agent.offline import code as c
from analysis.agent.offline.intents.base import (
    MAX_LISTED,
    Plan,
    agg_for,
    fmt,
    fmt_all,
    listed,
    pct,
    plural,
    row_nouns,
    scope,
    series,
    value_label,
)
from analysis.agent.offline.understand import Request

# --- time ---------------------------------------------------------------------------------------------


def time_plan(req: Request) -> Plan:
    agg = agg_for(req)
    label = value_label(req, agg)
    d = req.date.name
    code = c.load(req, dates=True) + c.periods(req)
    keys = f"[period, df[{req.group.name!r}]]" if req.group else "period"
    code += f"result = {series(req, keys, agg)}.rename({label!r})\n"
    if req.group:
        code += time_by_group_code(req, label)
    else:
        code += time_code(req, label)
    return Plan(f"Compute the {label} per period of {d}{scope(req)}.", code)


def time_code(req: Request, label: str) -> str:
    code = ""
    if agg_for(req) in ("sum", "count"):
        code = "result = result.reindex(starts.index, fill_value=0).rename_axis('period')\n"
    code += "table = result.reset_index()\n"
    if req.chart != "table":
        plot = "px.bar" if req.chart == "bar" else "px.line"
        markers = "" if req.chart == "bar" else ", markers=True"
        title = f"{label.capitalize()} per ' + grain + '{scope(req)}"
        code += "chart = table.assign(start=table['period'].map(starts))\n"  # a date axis, not text labels
        code += f"fig = {plot}(chart, x='start', y={label!r}{markers}, title='{title}')\nfig.show()\n"
    return code + (
        f"final_result = {{'grain': grain, 'values': {c.rounded_dict('result')},"
        " 'periods': int(len(result)), 'first': str(result.index[0]), 'last': str(result.index[-1]),"
        " 'peak_at': str(result.idxmax()), 'peak': round(float(result.max()), 4),"
        " 'low_at': str(result.idxmin()), 'low': round(float(result.min()), 4)}\ntable"
    )


def time_by_group_code(req: Request, label: str) -> str:
    g = req.group.name
    code = "table = result.reset_index()\n"
    if req.chart != "table":
        plot = "px.bar" if req.chart == "bar" else "px.line"
        title = f"{label.capitalize()} per ' + grain + ' by {g}{scope(req)}"
        code += "chart = table.assign(start=table['period'].map(starts))\n"
        code += f"fig = {plot}(chart, x='start', y={label!r}, color={g!r}, title='{title}')\nfig.show()\n"
    totals = "result.groupby(level=1).sum()" if agg_for(req) in ("sum", "count") else None
    overall = (
        f"'overall': {c.rounded_dict(totals + '.sort_values(ascending=False)')}, 'groups': int({totals}.size), "
        if totals
        else ""
    )
    return code + (
        f"final_result = {{'grain': grain, {overall}'periods': int(result.index.get_level_values(0).nunique()),"
        " 'first': str(result.index.get_level_values(0).min()), 'last': str(result.index.get_level_values(0).max())}"
        "\ntable"
    )


def time_answer(req: Request, r: dict) -> str:
    label = value_label(req, agg_for(req)).capitalize()
    of = "" if req.date.name.lower() == "date" else f" of {req.date.name}"
    head = f"{label} per {r['grain']}{of}{scope(req)}"
    if req.group:
        overall = ""
        if "overall" in r:
            overall = f" Over the whole range by {req.group.name}: {listed(r['overall'], r['groups'])}."
        return f"{head} by {req.group.name}, {r['first']} to {r['last']} ({fmt(r['periods'])} periods).{overall}"
    if r["periods"] <= MAX_LISTED:
        values = f": {listed(r['values'])}."
    else:
        values = f", {r['first']} to {r['last']} ({fmt(r['periods'])} periods)."
    if r["periods"] == 1:
        return head + values
    f = fmt_all([r["peak"], r["low"], *r["values"].values()])
    return f"{head}{values} Highest: **{f(r['peak'])}** ({r['peak_at']}); lowest: **{f(r['low'])}** ({r['low_at']})."


def growth_plan(req: Request) -> Plan:
    agg, g = agg_for(req), req.group.name
    label = value_label(req, agg)
    if req.grain is None:
        req = req.with_changes(grain="month")
    code = (
        c.load(req, dates=True)
        + c.periods(req)
        + (
            f"wide = {series(req, f'[period, df[{g!r}]]', agg)}.unstack({g!r}, fill_value=0).sort_index()\n"
            "first, last = wide.index[0], wide.index[-1]\n"
            "if len(wide) < 2:\n"
            "    raise ValueError(f'the data covers one {grain} only ({first}): there is no change to compare')\n"
            "start, end = wide.loc[first], wide.loc[last]\n"
            "change = ((end - start) / start.where(start != 0)).dropna()"
            f".sort_values(ascending={'decline' in req.keywords!r})\n"
            f"table = pd.DataFrame({{'start': start, 'end': end, 'change': change}}).loc[change.index]\n"
            "fig = px.bar(table.reset_index(), x=" + repr(g) + ", y='change',"
            f" title=f'Change in {label} from {{first}} to {{last}}')\nfig.show()\n"
            "final_result = {'grain': grain, 'first': str(first), 'last': str(last),"
            f" 'change': {c.rounded_dict('change')}, 'start': {c.rounded_dict('start[change.index]')},"
            f" 'end': {c.rounded_dict('end[change.index]')}}}\ntable"
        )
    )
    return Plan(f"Compare the {label} of each {g} in the first and last {req.grain} of {req.date.name}.", code)


def growth_answer(req: Request, r: dict) -> str:
    label, g = value_label(req, agg_for(req)), req.group.name
    changes = r["change"]
    if not changes:
        return f"No {g} has a {label} to compare in both {r['first']} and {r['last']}."
    leader, value = next(iter(changes.items()))
    decline = "decline" in req.keywords
    verb = "declined most" if decline else "grew fastest"
    if not decline and value < 0:
        verb = "declined least (none grew)"
    others = ", ".join(f"{k} {pct(v)}" for k, v in list(changes.items())[1:MAX_LISTED])
    f = fmt_all([r["start"][leader], r["end"][leader]])
    return (
        f"Comparing {r['first']} with {r['last']} ({label} per {r['grain']}{scope(req)}): **{leader}** {verb}, "
        f"**{pct(value)}** (from {f(r['start'][leader])} to {f(r['end'][leader])})."
        + (f" Others: {others}." if others else "")
    )


def average_count_plan(req: Request) -> Plan:
    """ "Average number of orders per month": the count per period (empty periods count 0) or per group, averaged."""
    noun = row_nouns(req)
    if req.grain:
        code = c.load(req, dates=True) + c.periods(req)
        code += "counts = df.groupby(period).size().reindex(starts.index, fill_value=0)\nunit = grain\n"
    else:
        g = req.group.name
        code = c.load(req) + f"counts = df.groupby({g!r}).size()\nunit = {g!r}\n"
    code += f"table = counts.rename({noun!r}).rename_axis(unit).reset_index()\n"
    if req.chart != "table":
        code += f"fig = px.bar(table, x=unit, y={noun!r}, title={f'{noun.capitalize()} per '!r} + unit)\nfig.show()\n"
    code += (
        "final_result = {'unit': unit, 'mean': round(float(counts.mean()), 4), 'total': int(counts.sum()),"
        " 'over': int(len(counts)), 'most_at': str(counts.idxmax()), 'most': int(counts.max()),"
        " 'fewest_at': str(counts.idxmin()), 'fewest': int(counts.min())}\ntable"
    )
    return Plan(f"Count the {noun} per {req.grain or req.group.name}{scope(req)} and average the counts.", code)


def average_count_answer(req: Request, r: dict) -> str:
    noun = row_nouns(req)
    return (
        f"On average **{fmt(r['mean'])} {noun} per {r['unit']}**{scope(req)} ({fmt(r['total'])} {noun} over "
        f"{fmt(r['over'])} {plural(r['unit'])}); the most in {r['most_at']} ({fmt(r['most'])}), the fewest in "
        f"{r['fewest_at']} ({fmt(r['fewest'])})."
    )
