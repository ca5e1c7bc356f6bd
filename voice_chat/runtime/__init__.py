"""Where the engines run: loaded once, shared by every session, with bounded worker pools."""
