"""The end of the source's life: `freeze-source`, `archive-source`, and `restore-source`
when it broke."""
