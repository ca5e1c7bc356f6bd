"""The OpenAI Realtime API (GA) dialect of /v1/realtime: client events, encoder, session."""
