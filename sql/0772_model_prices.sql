-- Table pgflow.model_prices (pgflow-rs extension): what a model costs, in US dollars per
-- million tokens, for pgflow.task_usage. Edited by users (insert/update/delete); empty when
-- installed. A price applies to the model of that name and to its dated variants (a row for
-- `gpt-4o-mini` prices `gpt-4o-mini-2024-07-18`); the longest matching name wins.
-- Invariants: prices are non-negative.
create table pgflow.model_prices (
  model                      text primary key,
  input_usd_per_million      numeric not null check (input_usd_per_million >= 0),
  output_usd_per_million     numeric not null check (output_usd_per_million >= 0),
  updated_at                 timestamptz not null default now()
);
