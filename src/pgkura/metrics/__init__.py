"""pgkura's own facts for Prometheus: the age of backups, off-site copies and drills, pending
migrations, scheduled runs and WAL archiving, as a textfile for node_exporter's collector.

It sits above schedule/ (it reads the runner's record): the runner never imports it; the CLI
hands the runner a hook that writes the file after each job."""
