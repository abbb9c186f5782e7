-- When the handler runs alone it fires the timers itself; this is its schedule monitor (what
-- `useMonitor` keeps in storage under the Functions host): the last scheduled time each timer
-- ran for, so a restart after downtime runs a missed timer once, past due.
CREATE TABLE timer_runs (
    name         text PRIMARY KEY,
    last_run_at  timestamptz NOT NULL
);
