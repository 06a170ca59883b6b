"""What the user allows: the policy, its verdicts and exit codes, and the settings file."""
