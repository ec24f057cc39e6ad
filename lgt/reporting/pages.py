"""report.md: one page for a run or a bench, from the storage alone."""

from __future__ import annotations

from pathlib import Path

from lgt import methods
from lgt.reporting.machine import describe_machine
from lgt.reporting.store import NOT_STARTED, Run
from lgt.reporting.summary import Row
from lgt.reporting.tables import columns, reading
from lgt.reporting.text import fixed, md, seconds
from lgt.studies import redact_url


def bench_page(runs: list[Run], rows: list[Row], tables: str, figures: dict[str, list[Path]], *, title: str,
                machine: str, storage_url: str) -> str:
    cols = columns(rows)
    lines = [f"# {title}", "", *_facts(runs, rows, machine, storage_url), "", "## Reading", "", reading(cols), "",
             tables.rstrip(), ""]
    sections = (("convergence", "## Convergence",
                 ("Best validation metric so far after each trial: median over seeds, band from the first to the "
                 "third quartile; the dotted line is the 95% mark used for trials-to-95.")),
                ("curves", "## Learning curves",
                 ("Per-epoch validation metric and losses of each method's best configuration (its best seed by "
                 "validation); the star marks the epoch whose weights were kept.")),
                ("llm_share", "## Time spent on the LLM",
                 "Share of each LGT round's time spent waiting for the three agents, against training the trial."))
    for kind, heading, caption in sections:
        if figures[kind]:
            lines += [heading, "", caption, ""]
            lines += [f"![{path.stem.replace('_', ' ')}]({path.name})" for path in figures[kind]] + [""]
    return "\n".join(lines)


def _facts(runs: list[Run], rows: list[Row], machine: str, storage_url: str) -> list[str]:
    benches = sorted({str(r["bench_id"]) for r in rows if r["bench_id"]})
    models = sorted({str(r["llm_model"]) for r in rows if methods.is_agents(r["method"]) and r["llm_model"]})
    has_lgt = any(methods.is_agents(r["method"]) for r in rows)
    budgets = sorted({int(r["budget"]) for r in rows if r["method"] != "default" and r["budget"] is not None})
    seeds = sorted({int(r["seed"]) for r in rows if r["seed"] is not None})
    epochs = sorted({int(r["epoch_budget"]) for r in rows if r["method"] != "default" and r["epoch_budget"]})
    epoch_note = f" and at most {' / '.join(map(str, epochs))} epochs (A/B branches included)" if epochs else ""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    names = sorted(dict.fromkeys(r["method"] for r in rows), key=methods.rank)
    llm = ", ".join(md(m) for m in models) if models else ("not recorded" if has_lgt else "none (no LGT runs)")
    failed = sum(1 for r in rows if r["status"] == "failed")
    waiting = sum(1 for r in rows if r["status"] in (NOT_STARTED, "incomplete"))
    notes = ([f"{failed} failed"] if failed else []) + ([f"{waiting} not finished yet"] if waiting else []) + ([f"benchmark {', '.join(benches)}"] if benches else [])
    return [
        (f"- **Runs:** {len(runs)} ({', '.join(methods.label(m) for m in names)} on {', '.join(map(md, targets))})"
        f"{''.join('; ' + n for n in notes)}; read from the Optuna storage `{redact_url(storage_url)}`."),
        f"- **LLM used by LGT's agents:** {llm}.",
        f"- **Machine:** {machine}.",
        (f"- **Budget:** {' / '.join(map(str, budgets)) or '?'} trials{epoch_note} per run, the default config first "
        f"(the untuned default runs it once); seeds {', '.join(map(str, seeds)) or '?'}."),
        "- **Data:** [summary.csv](summary.csv) (one row per run), [table.md](table.md).",
    ]


def machine_line(runs: list[Run], given: str | None) -> str:
    """What the runs ran on: as given, else as the runs recorded it, else this machine."""
    if given:
        return given
    recorded = next((str(r.attrs["machine"]) for r in runs if r.attrs.get("machine")), None)
    return recorded or f"{describe_machine()} (this machine, detected when the report was written)"


def run_page(run: Run, row: Row, figures: list[Path], out_dir: Path) -> str:
    metric = run.metric
    decimals = 3 if abs(float(row["best_val_metric"] or 0)) < 10 else 2
    model = f"; LLM: {md(row['llm_model'])}" if row["llm_model"] else ""
    lines = [f"# {run.name}", "",
             (f"{methods.label(run.method)} on **{md(run.target)}**, seed {row['seed']}, budget "
             f"{row['budget']} trials{model}. Status: {row['status']}"
             f"{': ' + md(row['fail_reason']) if row['fail_reason'] else ''}."), ""]
    if row["status"] == "incomplete":
        lines += [(f"**Incomplete:** the storage holds {row['trials_run']} of {row['budget']} trials; the run was "
                   f"stopped, or is still running. This page shows what is stored; `lgt report` writes it again."),
                  ""]
    lines += ["| | |", "| --- | --- |"]
    if run.best is not None:
        lines += [(f"| best validation {metric} | {fixed(row['best_val_metric'], decimals)} "
                  f"(trial {run.best.number}) |"),
                  f"| its test {metric} | {fixed(row['test_metric'], decimals)} |"]
    lines += [f"| default config's validation {metric} | {fixed(row['default_val_metric'], decimals)} |",
              (f"| trials | {row['trials_run']} of {row['budget']} "
              f"({sum(v is None for v in run.values())} failed) |"),
              f"| wall time | {_time_breakdown(row)} |"]
    if row["prompt_tokens"] is not None:
        lines.append(f"| LLM tokens | {row['prompt_tokens']:,} prompt, {row['completion_tokens'] or 0:,} "
                     f"completion |")
    lines += agents_rows(row)
    lines += ["", ("The configuration was chosen by validation "
              f"{metric} only; its test {metric} is reported, never used to choose."), ""]
    links = [f"[{name}]({name})" for name in ("changelog.md", "trials.csv", "summary.json")
             if (out_dir / name).exists()]
    if links:
        lines += [f"More: {', '.join(links)}.", ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    return "\n".join(lines) + "\n"


def agents_rows(row: Row) -> list[str]:
    """report.md's lines on an LGT run's agents: LLM time per round, their choices, and what the checks replaced."""
    if row.get("rounds") is None:
        return []
    lines = []
    if row["llm_seconds_per_round"] is not None:
        split = ""
        if (row["llm_prompt_eval_seconds"] or 0) + (row["llm_generation_seconds"] or 0) > 0:  # the server reported them
            rounds = max(1, int(row["rounds"]))
            split = (f" (reading prompts {row['llm_prompt_eval_seconds'] / rounds:.1f} s, writing replies "
                     f"{row['llm_generation_seconds'] / rounds:.1f} s)")
        lines.append(f"| LLM seconds per round | {row['llm_seconds_per_round']:.1f} s{split}, over {row['rounds']} "
                     f"rounds |")
    if row["choice_rounds"]:
        lines.append(f"| the Advisor's choices | departed from TPE's pick in {row['departed_rounds']} of "
                     f"{row['choice_rounds']} rounds; the gate kept TPE's pick in {row['gated_rounds']} |")
    lines.append(f"| fell back to TPE | {row['fallback_rounds']} of {row['rounds']} rounds (the Advisor failed) |")
    lines.append(f"| LLM texts replaced by the checks | {row['words_replaced']} (see the change log's "
                 f"\"replaced\" notes); guidance refused {row['guidance_refused']} time(s) |")
    return lines


def _time_breakdown(row: Row) -> str:
    parts = [f"training {seconds(row['training_seconds'])}"]
    if row["llm_seconds"] is not None:
        parts.append(f"LLM {seconds(row['llm_seconds'])}")
    if row["wall_seconds"] is None:
        return f"not recorded ({', '.join(parts)})"
    return f"{seconds(row['wall_seconds'])} ({', '.join(parts)}, other {seconds(row['other_seconds'])})"
