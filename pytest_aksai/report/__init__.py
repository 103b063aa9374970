"""The run report: a verdict per check with its measurements, as JSON and a one-page HTML summary."""

from pytest_aksai.report._run import CheckRecord, RunReport

__all__ = ["CheckRecord", "RunReport"]
