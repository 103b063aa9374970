"""pytest-aksai's bundled conformance suites, one module per area (installed as `pytest_aksai.suites`).

Run them from a clone with `pytest suites`, from an installed wheel with `pytest --pyargs pytest_aksai.suites`,
or copy them into your repository with `python -m pytest_aksai vendor DIR`.
"""
