"""Framework integrations: ``bullmq_sync.contrib.flask`` and ``bullmq_sync.contrib.django``."""
