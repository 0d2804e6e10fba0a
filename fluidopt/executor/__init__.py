"""The online executor: engine, policies, metrics."""
