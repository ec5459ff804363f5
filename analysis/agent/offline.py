"""The built-in offline analyst: a deterministic pydantic-ai ``FunctionModel`` (no network).

It recognises a documented set of common requests (see docs/offline-analyst.md), writes real pandas/plotly
code for them, runs it through the same ``run_python`` tool and sandbox as any LLM, and words the answer from
the ``final_result`` the code produced. Anything else gets a plain "beyond me" reply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

MODEL_NAME = "offline-analyst"
NUMERIC_PREFIXES = ("int", "float", "uint", "decimal", "number")
UNIT_TOKENS = {"mm", "cm", "kg", "km", "usd", "eur", "pct", "sec", "ms"}
DATE_WORDS = ("date", "time", "day", "month", "year", "week", "timestamp", "period")

OUT_OF_SCOPE = (
    "That request is beyond the built-in offline analyst. I can give a dataset overview, describe columns, count "
    "missing values, list the top/bottom N rows by a column, compute mean/sum/count/min/max/median of a column by "
    "another, and draw histograms, box plots, scatter, line and bar charts, or a correlation matrix. For anything "
    "else, ask an administrator to configure a model (OPENROUTER_API_KEY, or LLM_BASE_URL for a local "
    "OpenAI-compatible server)."
)

AGG_WORDS = {
    "mean": ("mean", "average", "avg", "typical"),
    "sum": ("sum", "total", "overall"),
    "count": ("count", "number of", "how many", "frequency", "frequencies"),
    "min": ("min", "minimum", "lowest", "smallest", "least"),
    "max": ("max", "maximum", "highest", "largest", "biggest", "most"),
    "median": ("median", "middle"),
}
AGG_LABEL = {"mean": "Mean", "sum": "Total", "count": "Count", "min": "Minimum", "max": "Maximum", "median": "Median"}


# --- text matching -----------------------------------------------------------------------------------


def _singular(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith(("ses", "xes", "ches", "shes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def _tokens(text: str) -> list[str]:
    text = re.sub(r"([a-z]{2,})([A-Z][a-z])", r"\1 \2", text)  # camelCase → camel Case
    return [_singular(t) for t in re.findall(r"[a-z0-9]+", text.lower())]


def _norm(text: str) -> str:
    return " " + " ".join(_tokens(text)) + " "


def _has(qn: str, *phrases: str) -> bool:
    return any(_norm(p) in qn for p in phrases)


@dataclass
class Column:
    name: str
    dtype: str

    @property
    def numeric(self) -> bool:
        return self.dtype.lower().startswith(NUMERIC_PREFIXES) and not self.dtype.lower().startswith("bool")

    @property
    def datelike(self) -> bool:
        d = self.dtype.lower()
        return "date" in d or "time" in d or any(w in _tokens(self.name) for w in DATE_WORDS)


@dataclass
class DatasetInfo:
    name: str
    format: str
    columns: list[Column] = field(default_factory=list)

    @classmethod
    def from_prompt_info(cls, info: dict) -> DatasetInfo:
        cols = [Column(str(c["name"]), str(c.get("dtype") or "object")) for c in info.get("columns") or []]
        return cls(name=info["name"], format=info.get("format") or "csv", columns=cols)

    def reader(self) -> str:
        readers = {
            "tsv": f"pd.read_csv({self.name!r}, sep='\\t')",
            "xlsx": f"pd.read_excel({self.name!r})",
            "parquet": f"pd.read_parquet({self.name!r})",
            "json": f"pd.read_json({self.name!r})",
        }
        return readers.get(self.format, f"pd.read_csv({self.name!r})")


def columns_mentioned(question: str, dataset: DatasetInfo) -> list[Column]:
    """Columns named in the question, in order of appearance; forgiving about case, spaces, _ and plurals."""
    qn = _norm(question)
    squashed = qn.replace(" ", "")
    found: list[tuple[int, int, Column]] = []
    for col in dataset.columns:
        cn = _norm(col.name)
        pos = qn.find(cn)
        toks = cn.split()
        if pos < 0 and len(toks) > 1 and (len(toks[-1]) <= 2 or toks[-1] in UNIT_TOKENS):
            cn = " " + " ".join(toks[:-1]) + " "  # "body mass" names body_mass_g
            pos = qn.find(cn)
        if pos < 0 and len(cn.strip()) > 3:
            glued = cn.replace(" ", "")
            pos = squashed.find(glued)
            pos = pos * 2 if pos >= 0 else -1  # rough position; only the order matters
        if pos >= 0:
            found.append((pos, -len(cn), col))
    found.sort(key=lambda t: (t[0], t[1]))
    chosen: list[Column] = []
    for _pos, _neg_len, col in found:
        # Drop a column whose name is contained in a longer one already chosen ("price" inside "unit price").
        if any(_norm(col.name) in _norm(c.name) for c in chosen):
            continue
        chosen.append(col)
    return chosen


def dataset_choose(question: str, datasets: list[DatasetInfo]) -> DatasetInfo | None:
    if not datasets:
        return None
    qn = _norm(question)
    for ds in datasets:
        stem = ds.name.rsplit(".", 1)[0]
        if _norm(stem) in qn or ds.name.lower() in question.lower():
            return ds
    return max(datasets, key=lambda ds: len(columns_mentioned(question, ds)))


def _number_in(question: str, default: int = 5) -> int:
    m = re.search(r"\b(\d{1,4})\b", question)
    if m:
        return max(1, min(int(m.group(1)), 1000))
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
             "ten": 10, "twenty": 20}  # fmt: skip
    for word, n in words.items():
        if re.search(rf"\b{word}\b", question.lower()):
            return n
    return default


def _agg_in(qn: str) -> str | None:
    for agg, words in AGG_WORDS.items():
        if _has(qn, *words):
            return agg
    return None


# --- plans: intent → code + answer ------------------------------------------------------------------


@dataclass
class Plan:
    intent: str
    thought: str
    code: str
    answer_template: str = ""  # formatted by answer_write with final_result
    extra: dict = field(default_factory=dict)


def _load(ds: DatasetInfo) -> str:
    return f"import pandas as pd\nimport plotly.express as px\ndf = {ds.reader()}\n"


def _group_and_value(cols: list[Column]) -> tuple[Column | None, Column | None]:
    numeric = [c for c in cols if c.numeric]
    categorical = [c for c in cols if not c.numeric]
    value = numeric[0] if numeric else None
    group = categorical[0] if categorical else (numeric[1] if len(numeric) > 1 else None)
    return group, value


def plan_make(question: str, datasets: list[DatasetInfo]) -> Plan | None:  # noqa: C901 - one branch per intent
    ds = dataset_choose(question, datasets)
    if ds is None:
        return None
    qn = _norm(question)
    cols = columns_mentioned(question, ds)
    numeric = [c for c in cols if c.numeric]
    load = _load(ds)
    by_words = ("by", "per", "for each", "each", "across", "grouped by", "broken down by", "split by")

    if _has(qn, "correlation", "correlate", "correlated", "corr", "relationship between", "related"):
        if len(numeric) >= 2:
            a, b = numeric[0], numeric[1]
            code = load + f"final_result = round(float(df[{a.name!r}].corr(df[{b.name!r}])), 4)\nfinal_result"
            return Plan(
                "correlation_pair",
                f"Compute the Pearson correlation between {a.name} and {b.name}.",
                code,
                f"The correlation between {a.name} and {b.name} is {{r}}.",
                {"a": a.name, "b": b.name},
            )
        code = load + (
            "corr = df.select_dtypes('number').corr().round(3)\n"
            "fig = px.imshow(corr, text_auto=True, title='Correlation matrix', color_continuous_scale='RdBu_r',"
            " zmin=-1, zmax=1)\nfig.show()\n"
            "pairs = corr.where(~corr.isna()).stack()\n"
            "pairs = pairs[[a < b for a, b in pairs.index]]\n"
            "top = pairs.abs().sort_values(ascending=False).head(3)\n"
            "final_result = {f'{a} ~ {b}': float(pairs[(a, b)]) for a, b in top.index}\ncorr"
        )
        return Plan("correlation_matrix", f"Compute the correlation matrix of the numeric columns of {ds.name}.", code)

    if _has(qn, "missing", "null", "nan", "empty value", "blank", "na value", "incomplete"):
        code = load + (
            "missing = df.isna().sum()\n"
            "final_result = {k: int(v) for k, v in missing.items()}\n"
            "missing.rename('missing').to_frame()"
        )
        return Plan("missing", f"Count missing values per column of {ds.name}.", code)

    chart = _has(qn, "chart", "plot", "graph", "visuali", "visualize", "draw", "show me", "diagram")
    if (
        _has(qn, "scatter")
        or (chart and _has(qn, "vs", "versus", "against"))
        or (len(numeric) >= 2 and _has(qn, "vs", "versus", "against"))
    ) and len(numeric) >= 2:
        x, y = numeric[0], numeric[1]
        color = next((c for c in cols if not c.numeric), None)
        color_arg = f", color={color.name!r}" if color else ""
        code = load + (
            f"fig = px.scatter(df, x={x.name!r}, y={y.name!r}{color_arg}, title={f'{y.name} vs {x.name}'!r})\n"
            f"fig.show()\nfinal_result = round(float(df[{x.name!r}].corr(df[{y.name!r}])), 4)"
        )
        return Plan(
            "scatter",
            f"Draw a scatter plot of {y.name} against {x.name}.",
            code,
            f"Here is the scatter plot of {y.name} against {x.name}; their correlation is {{r}}.",
        )
    if _has(qn, "over time", "trend", "line chart", "line plot", "line graph", "time series", "timeline") or (
        chart and any(c.datelike for c in cols)
    ):
        date = next((c for c in cols if c.datelike), None) or next((c for c in ds.columns if c.datelike), None)
        value = next((c for c in numeric if c is not date), None)
        if date and value:
            agg = _agg_in(qn) or "sum"
            code = load + (
                f"df[{date.name!r}] = pd.to_datetime(df[{date.name!r}], errors='coerce')\n"
                f"series = df.groupby({date.name!r})[{value.name!r}].{agg}().sort_index()\n"
                f"fig = px.line(series.reset_index(), x={date.name!r}, y={value.name!r}, markers=True,"
                f" title={f'{AGG_LABEL[agg]} {value.name} over time'!r})\nfig.show()\n"
                "final_result = {'first': str(series.index.min().date()), 'last': str(series.index.max().date()),"
                " 'start_value': round(float(series.iloc[0]), 4), 'end_value': round(float(series.iloc[-1]), 4),"
                " 'peak_at': str(series.idxmax().date()), 'peak': round(float(series.max()), 4)}"
            )
            return Plan(
                "line",
                f"Plot {AGG_LABEL[agg].lower()} {value.name} over {date.name}.",
                code,
                extra={"value": value.name, "agg": agg},
            )
    if _has(qn, "histogram", "hist", "distribution", "distributed", "spread", "box plot", "boxplot", "box"):
        col = numeric[0] if numeric else None
        if col:
            box = _has(qn, "box", "boxplot", "box plot", "whisker")
            plot = (
                f"fig = px.box(df, y={col.name!r}, title={f'Distribution of {col.name}'!r})"
                if box
                else f"fig = px.histogram(df, x={col.name!r}, nbins=30, title={f'Distribution of {col.name}'!r})"
            )
            code = (
                load
                + plot
                + "\nfig.show()\n"
                + (
                    f"s = df[{col.name!r}].dropna()\n"
                    "final_result = {'count': int(s.count()), 'mean': round(float(s.mean()), 4),"
                    " 'median': round(float(s.median()), 4), 'std': round(float(s.std()), 4),"
                    " 'min': round(float(s.min()), 4), 'max': round(float(s.max()), 4)}"
                )
            )
            return Plan("distribution", f"Show the distribution of {col.name}.", code, extra={"col": col.name})

    top = _has(qn, "top", "highest", "largest", "biggest", "best", "most", "greatest", "maximum")
    bottom = _has(qn, "bottom", "lowest", "smallest", "least", "worst", "fewest", "minimum")
    if (top or bottom) and (re.search(r"\d", question) or _has(qn, "top", "bottom", "rank", "ranking")) and numeric:
        n = _number_in(question)
        group, value = _group_and_value(cols)
        fn = "nlargest" if top and not bottom else "nsmallest"
        word = "Top" if fn == "nlargest" else "Bottom"
        if group is not None and not group.numeric:
            agg = _agg_in(qn.replace(" top ", " ").replace(" highest ", " ").replace(" lowest ", " ")) or "sum"
            agg = "sum" if agg in ("max", "min") else agg
            code = load + (
                f"ranked = df.groupby({group.name!r})[{value.name!r}].{agg}().{fn}({n})\n"
                "final_result = {str(k): round(float(v), 4) for k, v in ranked.items()}\n"
                f"ranked.reset_index()"
            )
            return Plan(
                "topn_group",
                f"Rank {group.name} by {AGG_LABEL[agg].lower()} {value.name}; keep {n}.",
                code,
                extra={"group": group.name, "value": value.name, "agg": agg, "word": word, "n": n},
            )
        code = load + (
            f"rows = df.{fn}({n}, {value.name!r})\n"
            f"final_result = [round(float(v), 4) for v in rows[{value.name!r}]]\nrows"
        )
        return Plan(
            "topn_rows",
            f"Take the {word.lower()} {n} rows of {ds.name} by {value.name}.",
            code,
            extra={"value": value.name, "word": word, "n": n},
        )

    agg = _agg_in(qn)
    group, value = _group_and_value(cols)
    bar = _has(qn, "bar chart", "bar plot", "bar graph", "bar", "column chart")
    grouped = group is not None and _has(qn, *by_words)
    if (agg or bar) and grouped and (value is not None or agg == "count"):
        agg = agg or "sum"
        if value is None or agg == "count":
            series = f"df.groupby({group.name!r}).size().rename('count')"
            label = "count"
        else:
            series = f"df.groupby({group.name!r})[{value.name!r}].{agg}()"
            label = f"{AGG_LABEL[agg].lower()} {value.name}"
        code = load + (
            f"result = {series}.sort_values(ascending=False)\n"
            f"fig = px.bar(result.reset_index(), x={group.name!r}, y=result.name,"
            f" title={f'{label.capitalize()} by {group.name}'!r})\nfig.show()\n"
            "final_result = {str(k): round(float(v), 4) for k, v in result.items()}\nresult.reset_index()"
        )
        return Plan(
            "groupby", f"Compute the {label} by {group.name}.", code, extra={"group": group.name, "label": label}
        )
    if agg and value is not None and agg != "count":
        code = load + f"final_result = round(float(df[{value.name!r}].{agg}()), 4)\nfinal_result"
        return Plan(
            "aggregate",
            f"Compute the {AGG_LABEL[agg].lower()} of {value.name}.",
            code,
            f"The {AGG_LABEL[agg].lower()} of {value.name} is {{r}}.",
        )
    if bar and cols:
        col = next((c for c in cols if not c.numeric), cols[0])
        code = load + (
            f"result = df[{col.name!r}].value_counts()\n"
            f"fig = px.bar(result.reset_index(), x={col.name!r}, y='count', title={f'Rows per {col.name}'!r})\n"
            "fig.show()\nfinal_result = {str(k): int(v) for k, v in result.items()}"
        )
        return Plan("groupby", f"Count rows per {col.name}.", code, extra={"group": col.name, "label": "count"})

    if _has(
        qn,
        "describe",
        "description",
        "summary statistic",
        "summary stat",
        "statistic",
        "stats",
        "summarize",
        "summarise",
        "summary",
    ):
        subset = f"[{[c.name for c in cols]!r}]" if cols else ""
        code = load + (
            f"desc = df{subset}.describe().round(4)\n"
            "final_result = {c: {k: (None if pd.isna(v) else float(v)) for k, v in desc[c].items()} for c in desc}\n"
            "desc"
        )
        return Plan("describe", f"Compute summary statistics of {ds.name}.", code)

    if _has(
        qn,
        "overview",
        "how many row",
        "how many column",
        "number of row",
        "number of column",
        "shape",
        "size",
        "what column",
        "which column",
        "column name",
        "list column",
        "what is in",
        "what's in",
        "look like",
        "head",
        "preview",
        "first row",
        "sample",
        "tell me about",
        "explore",
        "structure",
        "schema",
        "dataset",
        "data set",
        "count row",
        "row count",
    ) or (agg == "count" and not cols):
        code = load + (
            "print(f'{len(df)} rows × {df.shape[1]} columns')\nprint(df.dtypes.to_string())\n"
            "final_result = {'rows': int(df.shape[0]), 'columns': int(df.shape[1]), 'names': list(map(str, df.columns))}\n"
            "df.head(10)"
        )
        return Plan(
            "overview",
            f"Load {ds.name} and look at its shape, columns and first rows.",
            code,
            extra={"dataset": ds.name},
        )
    return None


# --- answers ---------------------------------------------------------------------------------------


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def answer_write(plan: Plan, result) -> str:  # noqa: C901 - one wording per intent
    x = plan.extra
    if plan.answer_template:
        return plan.answer_template.format(r=fmt(result))
    if plan.intent == "overview":
        names = ", ".join(result.get("names", [])[:30])
        return f"**{x['dataset']}** has **{fmt(result['rows'])} rows** and **{result['columns']} columns**: {names}."
    if plan.intent == "missing":
        gaps = {k: v for k, v in result.items() if v}
        if not gaps:
            return "There are **no missing values** in any column."
        listed = ", ".join(f"{k}: {fmt(v)}" for k, v in sorted(gaps.items(), key=lambda kv: -kv[1]))
        return f"**{fmt(sum(gaps.values()))} missing values** in {len(gaps)} column(s) — {listed}."
    if plan.intent == "describe":
        lines = [
            f"- **{c}**: mean {fmt(s.get('mean'))}, std {fmt(s.get('std'))}, min {fmt(s.get('min'))}, "
            f"median {fmt(s.get('50%'))}, max {fmt(s.get('max'))} (n={fmt(s.get('count'))})"
            for c, s in result.items()
        ]
        return "Summary statistics:\n" + "\n".join(lines) if lines else "There are no numeric columns to describe."
    if plan.intent in ("groupby", "topn_group"):
        items = list(result.items())
        listed = ", ".join(f"{k}: {fmt(v)}" for k, v in items[:15])
        more = f" (and {len(items) - 15} more)" if len(items) > 15 else ""
        if plan.intent == "topn_group":
            label = f"{AGG_LABEL[x['agg']].lower()} {x['value']}"
            return f"{x['word']} {len(items)} {x['group']} by {label}: **{listed}**."
        best = f" Highest: **{items[0][0]}** ({fmt(items[0][1])})." if items else ""
        return f"{x['label'].capitalize()} by {x['group']}: {listed}{more}.{best}"
    if plan.intent == "topn_rows":
        return f"The {x['word'].lower()} {len(result)} values of {x['value']} are **{', '.join(map(fmt, result))}**."
    if plan.intent == "distribution":
        r = result
        return (
            f"{x['col']}: mean **{fmt(r['mean'])}**, median **{fmt(r['median'])}**, std {fmt(r['std'])}, "
            f"range {fmt(r['min'])}–{fmt(r['max'])} over {fmt(r['count'])} values."
        )
    if plan.intent == "line":
        r = result
        return (
            f"{AGG_LABEL[x['agg']]} {x['value']} went from **{fmt(r['start_value'])}** ({r['first']}) to "
            f"**{fmt(r['end_value'])}** ({r['last']}); the peak was **{fmt(r['peak'])}** on {r['peak_at']}."
        )
    if plan.intent == "correlation_matrix":
        if not result:
            return "There are not enough numeric columns to correlate."
        listed = ", ".join(f"{k}: {v:.3f}" for k, v in result.items())
        return f"Strongest correlations: **{listed}** (the full matrix is in the chart)."
    return f"Result: {fmt(result)}"


# --- the FunctionModel ----------------------------------------------------------------------------


def _question(messages: list[ModelMessage]) -> str:
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if part.part_kind == "user-prompt" and isinstance(part.content, str):
                    return part.content
    return ""


def _last_tool_return(messages: list[ModelMessage]) -> ToolReturnPart | None:
    last = messages[-1] if messages else None
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return part
    return None


def _final_result_from(observation: str):
    m = re.search(r"^final_result \(json\): (.*)$", observation, flags=re.MULTILINE)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def out_of_scope_text(question: str, datasets: list[DatasetInfo]) -> str:
    """Why there is no plan: no data, no recognisable column (list them), or a request beyond the analyst."""
    if not datasets:
        return "This project has no datasets yet: upload one, then ask again."
    if any(columns_mentioned(question, ds) for ds in datasets):
        return OUT_OF_SCOPE
    names = "; ".join(f"{ds.name}: {', '.join(c.name for c in ds.columns[:30])}" for ds in datasets[:5])
    return f"I could not match a column in your question. The columns are — {names}. " + OUT_OF_SCOPE


def offline_model(*, datasets: list[dict]) -> FunctionModel:
    infos = [DatasetInfo.from_prompt_info(d) for d in datasets]

    def offline_analyst(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        question = _question(messages)
        plan = plan_make(question, infos)
        if plan is None:
            return ModelResponse(parts=[TextPart(out_of_scope_text(question, infos))])
        tool_return = _last_tool_return(messages)
        if tool_return is None:
            return ModelResponse(parts=[TextPart(plan.thought), ToolCallPart("run_python", {"code": plan.code})])
        observation = str(tool_return.content)
        if observation.startswith("status: error"):
            err = re.search(r"^error: (.*)$", observation, flags=re.MULTILINE)
            reason = err.group(1) if err else "the code failed"
            return ModelResponse(parts=[TextPart(f"I could not compute that: {reason}.")])
        result = _final_result_from(observation)
        if result is None:
            return ModelResponse(parts=[TextPart("The code ran but produced no result to report.")])
        try:
            return ModelResponse(parts=[TextPart(answer_write(plan, result))])
        except (KeyError, TypeError, ValueError, AttributeError):
            return ModelResponse(parts=[TextPart(f"Result: {json.dumps(result, default=str)[:2000]}")])

    return FunctionModel(offline_analyst, model_name=MODEL_NAME)
