"""The local development stack: Kafka (KRaft), a MongoDB-compatible server and an SMTP sink."""
