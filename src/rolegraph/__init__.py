"""rolegraph: multi-agent research workflows in YAML, every step traced.

```python
import rolegraph

wf = rolegraph.load("examples/literature_review.yaml")
result = wf.run_sync({"topic": "parameter-efficient fine-tuning"})
print(result.outputs["report"].read_text())
```
"""

from importlib import metadata as _metadata

from rolegraph.agents.agent import Agent, AgentResult
from rolegraph.agents.roles import Role
from rolegraph.durability.replay import ReplayReport, replay
from rolegraph.durability.resume import resume
from rolegraph.errors import (
    AgentError,
    BudgetExceeded,
    GraphError,
    ModelError,
    ModelNotAvailableError,
    ReplayDiverged,
    ReplayError,
    ResumeError,
    RolegraphError,
    RunError,
    SpecError,
    ToolError,
)
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.models.registry import resolve_model
from rolegraph.runtime.result import RunResult
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import Tool, ToolResult, tool
from rolegraph.workflow import Workflow, load
from rolegraph.workflows.spec import Budget

__all__ = [
    "Agent",
    "AgentError",
    "AgentResult",
    "Budget",
    "BudgetExceeded",
    "Completion",
    "GraphError",
    "Model",
    "ModelError",
    "ModelNotAvailableError",
    "ModelSettings",
    "ReplayDiverged",
    "ReplayError",
    "ReplayReport",
    "ResumeError",
    "Role",
    "RolegraphError",
    "RunError",
    "RunResult",
    "Source",
    "SpecError",
    "Tool",
    "ToolError",
    "ToolResult",
    "Usage",
    "Workflow",
    "__version__",
    "load",
    "replay",
    "resolve_model",
    "resume",
    "tool",
]

try:
    __version__ = _metadata.version("rolegraph")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"
