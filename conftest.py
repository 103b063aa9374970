"""Root conftest: the plugin's own tests drive pytest in pytest with `pytester`."""

pytest_plugins = ["pytester"]
