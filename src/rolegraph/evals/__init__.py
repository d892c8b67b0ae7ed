"""Evaluating workflows: eval sets of questions with gold answers, run and scored per model.

```python
from rolegraph.evals import evaluate, load_evalset

workflow = rolegraph.load("examples/literature_review.yaml")
evalset = load_evalset(Path("examples/evals/library_questions.yaml"), workflow)
report = await evaluate(workflow, evalset, models=[None], repeat=1)
print(report.to_markdown())
```
"""

from rolegraph.evals.loader import load_evalset, parse_evalset
from rolegraph.evals.metrics import METRICS, RunScores, score_run
from rolegraph.evals.record import ClaimRef, RunRecord, record_of
from rolegraph.evals.runner import EvalReport, EvalRun, MetricSummary, evaluate
from rolegraph.evals.spec import EvalQuestion, EvalSet

__all__ = [
    "METRICS",
    "ClaimRef",
    "EvalQuestion",
    "EvalReport",
    "EvalRun",
    "EvalSet",
    "MetricSummary",
    "RunRecord",
    "RunScores",
    "evaluate",
    "load_evalset",
    "parse_evalset",
    "record_of",
    "score_run",
]
