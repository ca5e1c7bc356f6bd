"""The conversation flow: turn detection, STT, LLM, chunking, TTS, and the state of a reply."""
