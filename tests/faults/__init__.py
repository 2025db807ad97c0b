"""The fault matrix (docs/reliability.md): one module per fault family."""
