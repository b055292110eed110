"""Evaluation: task suites and checkers, routers, the runner and its metrics."""
