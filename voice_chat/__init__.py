"""voice_chat: talk out loud with AI characters, self-hosted and offline by default."""

__version__ = "0.1.0"
