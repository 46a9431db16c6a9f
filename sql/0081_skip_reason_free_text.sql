-- pgflow.step_states.skip_reason becomes free text, as upstream pgflow has it: tools that
-- mark steps skipped by hand write reasons of their own. Drops the value list
-- (skip_reason_is_valid) that 0080 created; the status/reason consistency check
-- (skip_reason_matches_status: a reason exactly on skipped steps) stays.
alter table pgflow.step_states drop constraint skip_reason_is_valid;

comment on column pgflow.step_states.skip_reason is
  'Why the step was skipped; set exactly when status = ''skipped''. pgflow writes '
  'condition_unmet, handler_failed or dependency_skipped; other tools may write their own.';
