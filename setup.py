"""The package layout that pyproject.toml cannot express: top-level folders shipped as subpackages.

- `suites/` (the conformance suites, plain pytest modules) ships as `pytest_aksai.suites`, so an installed
  wheel runs them with `pytest --pyargs pytest_aksai.suites`;
- `fixtures/` (declarative data the suites apply: probe pods, sample workspaces, prompt sets, ...) ships as
  `pytest_aksai/fixtures/` once the folder exists: setuptools refuses a package-dir whose folder is missing.

Everything else is declared in pyproject.toml. The same mapping serves the wheel and `pip install -e .`.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).resolve().parent

# Namespace packages too: data folders without __init__.py (the sim's CRDs) are packages whose YAML the
# package-data globs of pyproject.toml pick up.
found = find_namespace_packages(include=["pytest_aksai", "pytest_aksai.*"], exclude=["*.__pycache__"])
packages = [*found, "pytest_aksai.suites"]
package_dir = {"pytest_aksai.suites": "suites"}
if (HERE / "fixtures").is_dir():
    packages.append("pytest_aksai.fixtures")
    package_dir["pytest_aksai.fixtures"] = "fixtures"

setup(packages=packages, package_dir=package_dir)
