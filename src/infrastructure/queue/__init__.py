"""The procrastinate queue: app, transactional enqueue, retries, failure records."""
