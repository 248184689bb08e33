"""The cut-over: `luckygas migrate` (checkpoints, backup, shadow build, swap) and its undo,
`luckygas rollback`. migrate.py walks the steps of steps.py; rollback.py restores a
migration's backup; records.py writes both into the validation schema."""
