"""Fine-tuning jobs: launch, the queue, events and monitoring, checkpoints and tuned models."""
