"""`khpl-migrate rehearse`: a dress rehearsal on a copy of the operator's own source."""
