"""The sandboxed child's process: entry, fork server, hardening layers, escape attempts."""
