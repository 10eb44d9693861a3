"""The scripted demo scenario played by ``loyalty demo`` against the local stack."""
