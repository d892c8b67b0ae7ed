"""How each kind of step runs: an agent (`agent`), a tool call (`tool`), a Python function call (`function`).

The executor (`rolegraph.runtime.executor.LocalExecutor`) dispatches a `StepCall`
on its step's kind to one of these; the scheduler never asks which kind a step is.
"""

from rolegraph.runtime.steps.agent import AgentStep, agent_step, known_sources, run_agent_step
from rolegraph.runtime.steps.function import StepFunction, run_function_step
from rolegraph.runtime.steps.tool import run_tool_step, tool_output

__all__ = [
    "AgentStep",
    "StepFunction",
    "agent_step",
    "known_sources",
    "run_agent_step",
    "run_function_step",
    "run_tool_step",
    "tool_output",
]
