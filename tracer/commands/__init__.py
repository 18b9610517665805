"""CLI verbs, one module each, all implementing :class:`tracer.commands.protocol.Command`."""
