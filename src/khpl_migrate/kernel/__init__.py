"""What every run shares: the pinned source, backups, the manifest, baselines, the record
writer, the bounded runner, progress and the clock."""
