"""The engine: the scheduler, executors, the public invocation (`invoke`), results and outputs."""
