"""Evaluating workflows: eval sets of questions with gold answers, run and scored per model and settings.

```python
from rolegraph.evals import evaluate, load_evalset, render_html

workflow = rolegraph.load("examples/literature_review.yaml")
evalset = load_evalset(Path("examples/evals/library_questions.yaml"), workflow)
report = await evaluate(workflow, evalset, models=[None], grid={"temperature": [0, 0.7]}, repeat=2)
print(report.to_markdown())
Path("eval.html").write_text(render_html(report))
```
"""

from rolegraph.evals.html import render_html
from rolegraph.evals.judge import JUDGE_PROMPT, FactVerdict, Judge
from rolegraph.evals.loader import load_evalset, parse_evalset
from rolegraph.evals.manifest import EvalManifest, ManifestError, find_eval
from rolegraph.evals.matrix import Column, columns, parse_grid
from rolegraph.evals.metrics import JUDGE_METRIC, METRICS, RunScores, score_run
from rolegraph.evals.record import ClaimRef, RunFolderError, RunRecord, record_from_dir, record_of
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary, evaluate, rescore
from rolegraph.evals.spec import EvalQuestion, EvalSet

__all__ = [
    "JUDGE_METRIC",
    "JUDGE_PROMPT",
    "METRICS",
    "ClaimRef",
    "Column",
    "EvalManifest",
    "EvalQuestion",
    "EvalReport",
    "EvalRun",
    "EvalSet",
    "FactVerdict",
    "Judge",
    "ManifestError",
    "MetricSummary",
    "RunFolderError",
    "RunRecord",
    "RunScores",
    "columns",
    "evaluate",
    "find_eval",
    "load_evalset",
    "parse_evalset",
    "parse_grid",
    "record_from_dir",
    "record_of",
    "render_html",
    "rescore",
    "score_run",
]
