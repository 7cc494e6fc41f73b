"""What every menu app uses and none owns: the audit trail, runtime state in Redis, the
helpers that send work to the workers, the configuration-wide rules' registry, and the strict
environment reader. It imports none of the menu apps (import-linter says so)."""
