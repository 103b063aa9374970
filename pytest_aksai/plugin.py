"""pytest-aksai's pytest face (being built: options, profiles, markers, fixtures)."""
