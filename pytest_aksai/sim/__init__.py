"""The embedded simulated AKS AI lab (being built)."""
