"""The REST API: parse a request, call the engine, wrap the result. No numerics here."""
