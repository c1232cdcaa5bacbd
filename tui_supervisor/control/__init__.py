"""Control: the engine's Unix socket (server) and the SupervisorAPI client over it."""
