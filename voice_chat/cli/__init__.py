"""The ``voice-chat`` command line: ``serve``, ``talk``, ``characters``, ``voices``."""
