"""What the user allows: the declarable formats, the policy, its verdicts and exit codes, and the settings file."""
