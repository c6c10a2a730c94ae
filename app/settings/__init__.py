"""Settings: stored settings, API keys, the password and login, the maintenance switch."""
