"""The bench's report, rebuilt from a recorded run (tests/data/bench_quick.json): no server needed.

The fixture is the measurement part of a real `python -m helpers bench --quick --json` on this
course's 2-core machine (under load); these tests check what the report derives and lays out
from it, not how fast anything was.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.maintainers.bench import derive, plots, report
from helpers.maintainers.bench.pgbench import seconds_for
from helpers.maintainers.bench.results import LabResults, load, to_dict
from helpers.maintainers.bench.sizes import FULL, QUICK, SMOKE

pytestmark = pytest.mark.no_server  # no PostgreSQL needed: `make test-unit` runs this module

RECORDED = Path(__file__).parent / "data" / "bench_quick.json"


@pytest.fixture
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def results(recorded: dict[str, Any]) -> LabResults:
    return report.results_of(recorded)


def test_a_recorded_run_loads_into_the_dataclasses_and_back(recorded: dict[str, Any], results: LabResults) -> None:
    assert results.workloads.pool_costs.methods["fetch"].steps[0].step.key == "book"
    again = json.loads(json.dumps(to_dict(results)))  # as write_json stores it: tuples become lists
    for key in ("mode", "environment", "workloads"):
        assert again[key] == recorded[key], key
    # recorded before `pgbench_same_queries` existed: it loads with the default, the -T the run used
    assert again["sizes"] == {**recorded["sizes"], "pgbench_same_queries": False}


def test_the_quick_size_is_the_one_the_recorded_run_measured(results: LabResults) -> None:
    """Notebook 10 runs --quick live; the smoke size is the one the test suite may shrink."""
    assert results.sizes == QUICK
    assert not QUICK.pgbench_same_queries and not FULL.pgbench_same_queries and SMOKE.pgbench_same_queries


def test_pgbench_runs_whole_seconds_beside_a_side_and_says_how_it_ran(results: LabResults) -> None:
    assert [seconds_for(s) for s in (0.0, 0.2, 1.49, 1.5, 7.6, float("nan"))] == [1, 1, 1, 2, 8, 1]
    notes = {s.title: " ".join(s.notes) for s in report.tables(results, report.derived(results))}
    costs = results.workloads.pool_costs.methods["fetch"].pgbench_seconds
    assert any(f"-T {', '.join(map(str, costs))} s" in text for text in notes.values())
    smoke = copy.deepcopy(results)
    smoke.sizes = dataclasses.replace(smoke.sizes, pgbench_same_queries=True)
    notes = " ".join(note for s in report.tables(smoke, report.derived(smoke)) for note in s.notes)
    assert "-t = the asyncpg side's queries" in notes and "-t: as many queries as a step" in notes
    assert "-T" not in notes


def test_goals_come_from_the_figures_and_name_their_constants(results: LabResults) -> None:
    goals = {g.id: g for g in derive.goals(results)}
    assert list(goals) == ["fetch_vs_pgbench_1", "fetch_vs_pgbench_6", "copy_vs_psql", "cursor_50_memory",
                           "cursor_1000_memory", "pool_costs_fetch", "pool_costs_fetchrow", "quick_seconds"]
    fetch = results.workloads.concurrent_queries.methods["fetch"]
    pool, ceiling = fetch.qps("asyncpg_pool"), fetch.qps("pgbench_pool")
    assert pool is not None and ceiling is not None
    assert goals["fetch_vs_pgbench_6"].measured == pytest.approx(pool / ceiling)
    assert goals["fetch_vs_pgbench_6"].met == (pool / ceiling >= derive.GOAL_FETCH_VS_PGBENCH.limit)
    assert goals["pool_costs_fetchrow"].measured == max(
        r.vs_pgbench or 0.0 for r in results.workloads.pool_costs.methods["fetchrow"].steps)
    for goal, target in ((goals["fetch_vs_pgbench_1"], derive.GOAL_FETCH_VS_PGBENCH),
                         (goals["copy_vs_psql"], derive.GOAL_COPY_VS_PSQL),
                         (goals["cursor_50_memory"], derive.GOAL_CURSOR_MEMORY),
                         (goals["pool_costs_fetch"], derive.GOAL_COSTS_FETCH),
                         (goals["pool_costs_fetchrow"], derive.GOAL_COSTS_FETCHROW),
                         (goals["quick_seconds"], derive.GOAL_SECONDS["quick"])):
        assert f"{target.sign} {target.limit:g}" in goal.goal, goal.goal
        assert goal.met == target.met(goal.measured), goal.id


def test_a_goal_is_reported_as_not_met_when_its_figure_falls_short(results: LabResults) -> None:
    slower = copy.deepcopy(results)
    for step in slower.workloads.pool_costs.methods["fetchrow"].steps:
        step.vs_pgbench = derive.GOAL_COSTS_FETCHROW.limit - 0.01
    goal = next(g for g in derive.goals(slower) if g.id == "pool_costs_fetchrow")
    assert not goal.met and goal.measured == pytest.approx(0.49)
    slower.workloads.pool_costs.methods["fetchrow"].steps[-1].vs_pgbench = derive.GOAL_COSTS_FETCHROW.limit
    goal = next(g for g in derive.goals(slower) if g.id == "pool_costs_fetchrow")
    assert goal.met and goal.detail.startswith("5. two processes")


def test_every_section_is_laid_out_and_printed(results: LabResults) -> None:
    figures = report.derived(results)
    sections = report.tables(results, figures)
    titles = [s.title for s in sections]
    assert [t.split(" ")[0] for t in titles] == ["1.", "2.", "3.", "4.", "5.", "6.", "7.", "7.", "Goals"]
    for section in sections:
        assert all(len(row) == len(section.columns) for row in section.rows), section.title
    costs = [s for s in sections if s.title.startswith("7.")]
    assert [s.title.split("(")[1].split(",")[0] for s in costs] == ["fetchrow", "fetch"]
    for section in costs:
        assert [row[0][:2] for row in section.rows] == ["1.", "2.", "3.", "4.", "5.", "pg"]
    text = report.render(sections, report.header(results))
    for title in titles:
        assert title in text
    assert "uvloop 0.23.0" in text.splitlines()[0]


def test_a_skipped_step_and_a_missing_driver_are_shown_as_skipped(results: LabResults) -> None:
    without = copy.deepcopy(results)
    without.environment.psycopg = None
    for data in without.workloads.pool_costs.methods.values():
        step = data.result("uvloop")
        step.summary, step.vs_pgbench, step.skipped = None, None, "uvloop not installed: skipped"
    sections = report.tables(without, report.derived(without))
    psycopg = next(s for s in sections if s.title.startswith("5."))
    assert all(row[1:] == ["skipped", "skipped"] for row in psycopg.rows)
    for section in (s for s in sections if s.title.startswith("7.")):
        row = next(r for r in section.rows if r[0].startswith("4."))
        assert row[1] == "skipped" and row[-1] == "uvloop not installed: skipped"


def test_the_document_is_json_and_loads_back(results: LabResults, tmp_path: Path) -> None:
    figures = report.derived(results)
    path = tmp_path / "bench.json"
    report.write_json(report.document(results, figures, {}), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema_version"] == report.SCHEMA_VERSION
    assert len(doc["goals"]) == 8 and len(doc["tables"]) == 9
    assert load(LabResults, doc) == results


@pytest.mark.slow
def test_every_chart_is_drawn_from_the_recorded_run(results: LabResults) -> None:
    figures = plots.figures(results, report.derived(results))
    assert set(figures) == set(plots.PLOTS)
    costs = figures["pool_costs_fetchrow.png"].axes[0]
    ceiling = results.workloads.pool_costs.methods["fetchrow"].pgbench.qps
    assert any(np.asarray(line.get_ydata()).tolist() == [ceiling, ceiling] for line in costs.get_lines())
