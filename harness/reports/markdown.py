"""summary.md: the report's tables as GitHub-flavoured Markdown (no plots, no drill-down)."""
from __future__ import annotations

from harness.reports import formatting as fmt


def table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)]) + "\n"


def summary(ctx: dict) -> str:
    board = ctx["leaderboard"]
    dataset = ctx["dataset"]
    parts = [f"# Retrieval benchmark: {ctx['run_name']}\n",
             f"Dataset {dataset.get('name', '?')} ({dataset.get('split', '?')}), baseline "
             f"`{ctx['baseline']}`. Means with 95% bootstrap intervals; **bold** = best per "
             "column.\n"]
    if ctx["failed"]:
        parts.append("## Failed pipelines\n")
        parts.append(table(["pipeline", "reason"], [[p.name, p.reason or ""] for p in ctx["failed"]]))
    parts.append("## Leaderboard\n")
    rows = []
    for pipeline, cells in board.rows:
        row = [pipeline]
        for m in board.measures:
            c = cells.get(m)
            text = "" if c is None else fmt.value(c.mean)
            if c is not None and c.ci_low is not None:
                text += f" [{fmt.value(c.ci_low)}, {fmt.value(c.ci_high)}]"
            elif c is not None and c.n_queries == 1:
                text += " [no interval: 1 query]"
            row.append(f"**{text}**" if c is not None and c.best else text)
        rows.append(row)
    parts.append(table(["pipeline", *board.measures], rows))
    parts.append(f"## Significance against `{ctx['baseline']}`\n")
    parts.append("Paired t-test and randomisation test, Holm-adjusted over the table; n/a: "
                 "undefined on these queries (see note), left out of the Holm family.\n")
    parts.append(table(
        ["pipeline", "measure", "Δ", "p t (Holm)", "p random. (Holm)", "W/T/L", "queries", "note"],
        [[r.pipeline, r.measure, fmt.signed(r.comparison.delta),
          fmt.p_value(r.comparison.p_t_test_holm), fmt.p_value(r.comparison.p_randomisation_holm),
          f"{r.comparison.record.wins}/{r.comparison.record.ties}/{r.comparison.record.losses}",
          r.comparison.n_queries, "; ".join(r.notes)]
         for r in ctx["sig_rows"]]))
    if ctx["backend_rows"]:
        parts.append("## Backends against torch fp32\n")
        parts.append(f"Δ {ctx['quality_measure']} = backend − torch (paired randomisation test, "
                     "Holm-adjusted over this table); speed ratios backend over torch, above 1 = "
                     "faster.\n")
        parts.append(table(
            ["pipeline", "backend", "torch twin", "Δ", "p random. (Holm)", "encode docs/s ×",
             "p50 ×", "p95 ×", "batch q/s ×"],
            [[r.pipeline, r.backends, r.torch_pipeline,
              fmt.signed(r.comparison.delta if r.comparison else None),
              fmt.p_value(r.comparison.p_randomisation_holm if r.comparison else None),
              *(fmt.value(x, 2) for x in (r.encode_ratio, r.p50_ratio, r.p95_ratio,
                                          r.batch_ratio))]
             for r in ctx["backend_rows"]]))
    env = ctx["env"]
    parts.append("## Cost\n")
    parts.append(f"Device {env.get('device', '?')}, threads {env.get('threads', '?')}.\n")
    parts.append(table(["pipeline", *ctx["cost_labels"]],
                       [[p, *(fmt.stat(col[3], v) for col, v in zip(ctx["cost_columns"], values))]
                        for p, values in ctx["cost_rows"]]))
    if ctx["attributions"]:
        parts.append("## Failure attribution (queries per category, cut "
                     f"{ctx['cut']})\n")
        names = list(ctx["attributions"][0].queries_by_category())
        parts.append(table(["pipeline", "first stage", *names],
                           [[a.pipeline, a.parent,
                             *(len(q) for q in a.queries_by_category().values())]
                            for a in ctx["attributions"]]))
    return "\n".join(parts)
