"""The parsing engine: stdlib only, never Qt. It runs inside a sandboxed child process."""
