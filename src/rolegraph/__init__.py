"""rolegraph: multi-agent research workflows in YAML, every step traced.

```python
import rolegraph

wf = rolegraph.load("examples/literature_review.yaml")
result = wf.run_sync({"topic": "parameter-efficient fine-tuning"})
print(result.outputs["report"].read_text())
```
"""

from rolegraph.agents.agent import Agent, AgentResult
from rolegraph.agents.roles import Role
from rolegraph.errors import (
    AgentError,
    GraphError,
    ModelError,
    ModelNotAvailableError,
    RolegraphError,
    RunError,
    SpecError,
    ToolError,
)
from rolegraph.models.model import Completion, Model, ModelSettings, Usage
from rolegraph.tools.sources import Source
from rolegraph.tools.tool import Tool, ToolResult, tool
from rolegraph.workflows.run import RunResult, Workflow, load

__all__ = [
    "Agent",
    "AgentError",
    "AgentResult",
    "Completion",
    "GraphError",
    "Model",
    "ModelError",
    "ModelNotAvailableError",
    "ModelSettings",
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
    "load",
    "tool",
]

__version__ = "0.1.0"
