"""The message pipeline: queue, deliver, and what the provider tells us back."""
