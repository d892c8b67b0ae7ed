"""The research pipeline's engine steps: functions a workflow calls by import path, with no model.

PaperQA2's shape (search, gather evidence, answer), divided by what a model can
do. These functions are the parts that need no judgement; the demo
(``examples/literature_review.yaml``) chains them with a planner, gatherers, a
critic and a writer::

    find (tool) → scope → plan (planner) → queries → search (tool, per question)
        → passages → gather (gatherer, per question) → critique (critic) → select → write (writer)

- `scope`: the papers a topic search found that are on the topic (the ranking's
  natural break), their titles and the topic's key terms, for the planner.
- `queries`: one search per question, from the question, its paper's title and the topic.
- `passages`: a question's search hits, narrowed to the papers in scope.
- `select`: the evidence the critic kept, grouped by question, for the writer.
"""

from rolegraph.research.evidence import passages, select
from rolegraph.research.scope import key_terms, natural_break, queries, scope

__all__ = ["key_terms", "natural_break", "passages", "queries", "scope", "select"]
