"""Test helpers (tiny models, a scripted OpenAI-protocol server, trainable models), imported by tests as
`helpers.<module>`; conftest.py holds only fixtures."""
