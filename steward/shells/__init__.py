"""The async shells: load state, let `flows` decide, store the outcome in one unit of work."""
