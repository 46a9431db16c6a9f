-- Schema `pgflow`: home of every pgflow table, type, function and view.
-- pgmq lives in its own `pgmq` schema and is installed separately (`pgflow install`).
create schema if not exists pgflow;
