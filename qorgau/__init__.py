"""qorgau — Kazakhstan's personal-data law and AI law, made operational."""

__version__ = "0.1.0"
