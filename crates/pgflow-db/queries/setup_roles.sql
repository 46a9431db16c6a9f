-- Creates (when missing) the least-privileged worker and read-only roles; see sql/0990_setup_roles.sql.
SELECT FROM pgflow.setup_roles(worker_role => $1, reader_role => $2)
