"""pytest-aksai: conformance checks for self-hosted LLM inference on AKS."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
