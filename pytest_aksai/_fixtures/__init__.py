"""The plugin's fixtures; thin compositions of the domain layer."""
